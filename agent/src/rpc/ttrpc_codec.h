// The ttrpc wire format (containerd/ttrpc), as pure functions with no I/O.
//
// Every message is a frame: a 10-byte big-endian header, then `length` payload bytes.
//
//   u32 length | u32 stream_id | u8 type | u8 flags | payload...
//
// A request frame (type 1) carries a serialized ttrpc.Request, a response frame (type 2)
// a ttrpc.Response whose status is a google.rpc.Status. Clients number their streams with
// odd ids. A payload may be at most 4 MiB.
//
// Reading: feed whatever bytes arrived to a FrameDecoder and take the complete frames out:
//
//   FrameDecoder dec;
//   dec.Feed(std::string_view(buf, n));
//   while (std::optional<Frame> f = dec.Next()) { ... }
//
// A frame longer than the limit is never buffered: its payload is skipped as it arrives
// and Next() then yields it with `oversized` set and an empty payload, so the caller can
// answer RESOURCE_EXHAUSTED on that stream and keep the connection (what containerd's
// server does). At end of input, `dec.idle()` tells whether the stream ended on a frame
// boundary or inside a frame (truncated).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace ttrpc {
class Request;
class Response;
}  // namespace ttrpc

namespace kata::ttrpc {

inline constexpr size_t kHeaderSize = 10;
inline constexpr uint32_t kMaxMessageSize = 4u << 20;

enum FrameType : uint8_t {
  kRequest = 1,
  kResponse = 2,
  kData = 3,  // streaming (ttrpc >= 1.2); not used by the agent API
};

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
};

void EncodeHeader(const FrameHeader& h, char out[kHeaderSize]);
FrameHeader DecodeHeader(const char in[kHeaderSize]);

// Header + payload. The caller keeps payloads within the limit.
std::string EncodeFrame(uint32_t stream_id, uint8_t type, std::string_view payload,
                        uint8_t flags = 0);

struct Frame {
  FrameHeader header;
  std::string payload;     // empty when oversized
  bool oversized = false;  // header.length > the decoder's limit; payload skipped
};

class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_payload = kMaxMessageSize) : max_payload_(max_payload) {}

  void Feed(std::string_view bytes);
  // The next complete frame, or nothing until more bytes are fed.
  std::optional<Frame> Next();

  // True when no partial frame is held: end of input here is a clean close.
  bool idle() const { return header_fill_ == 0 && !in_body_; }
  // Bytes of the current partial frame received so far (header and payload).
  size_t partial_bytes() const;

 private:
  const uint32_t max_payload_;
  char header_buf_[kHeaderSize];
  size_t header_fill_ = 0;
  bool in_body_ = false;
  FrameHeader current_;
  std::string body_;
  uint64_t skip_left_ = 0;  // oversized payload bytes still to skip
  std::deque<Frame> ready_;
};

// "grpc.AgentService/CreateContainer" <-> service "grpc.AgentService", method "CreateContainer".
std::string FullMethod(const ::ttrpc::Request& req);

// Parses a request frame's payload (INVALID_ARGUMENT when it is not a ttrpc.Request).
StatusOr<::ttrpc::Request> ParseRequest(std::string_view payload);

// A response frame in two parts, so that a large payload is sent from where it lies instead
// of being copied into the frame: the frame is `head` followed by `payload` (which points
// into the caller's buffer). The frame is {status {code, message}, payload}. An OK status
// carries the payload; an error carries none and is all in head, with payload empty. A
// response that would exceed the limit is replaced by a RESOURCE_EXHAUSTED status (the
// client would discard it anyway).
struct ResponseParts {
  std::string head;
  std::string_view payload;
};
ResponseParts EncodeResponseParts(uint32_t stream_id, const Status& st, std::string_view payload);

// The same frame in one string.
std::string EncodeResponseFrame(uint32_t stream_id, const Status& st, std::string_view payload);

// A complete request frame. timeout_nano 0: no deadline.
std::string EncodeRequestFrame(uint32_t stream_id, std::string_view full_method,
                               std::string_view payload, int64_t timeout_nano);

// Splits a response frame's payload into the call's status and its payload.
Status ParseResponse(std::string_view frame_payload, std::string* payload);

}  // namespace kata::ttrpc
