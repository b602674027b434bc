// Framing of the messages between the agent and its container set-up process on their
// socketpair (SOCK_STREAM): a little-endian u32 length, then one serialized
// kata.init.InitMessage (container_init.proto). A frame may carry one fd (SCM_RIGHTS).
//
// The set-up process uses the blocking calls (it has nothing else to do); the agent
// reads with FrameReader from a non-blocking fd, waiting through its CallContext.
#pragma once

#include <string>

#include "container_init.pb.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

inline constexpr size_t kMaxInitFrame = 16 << 20;

// Encodes msg as one frame.
std::string EncodeInitFrame(const kata::init::InitMessage& msg);

// Sends a frame (blocking, or waiting via poll on a non-blocking fd), with fd_to_pass
// attached when >= 0.
Status SendInitMessage(int sock, const kata::init::InitMessage& msg, int fd_to_pass = -1);

// Reads one frame (blocking fd). NOT_FOUND at a clean end of stream (peer closed).
StatusOr<kata::init::InitMessage> RecvInitMessage(int sock, UniqueFd* fd_out = nullptr);

// Incremental reader for a non-blocking socket: Fill() reads what is there, Next() yields
// complete frames.
class FrameReader {
 public:
  enum class Fill { kData, kWouldBlock, kEnd };
  // Reads available bytes: kData, kWouldBlock (nothing there yet), kEnd (peer closed).
  StatusOr<Fill> FillFrom(int sock);
  // Pops the next complete message, if one is buffered; *fd gets an fd that came with it.
  StatusOr<bool> Next(kata::init::InitMessage* msg, UniqueFd* fd);

 private:
  std::string buf_;
  std::vector<UniqueFd> fds_;
};

}  // namespace kata
