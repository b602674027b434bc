// The host side of "hybrid vsock", the convention of Firecracker and Cloud Hypervisor:
//
//   host -> guest: a client connects to the unix socket PATH and writes "CONNECT <port>\n";
//     it reads "OK <host port>\n" once the guest accepted, or sees the connection closed if
//     the guest refused (or did not answer in time). Raw stream bytes follow the OK line.
//   guest -> host: a guest connection to host (CID 2) port P is connected to the unix socket
//     "PATH_P" if something listens there, and refused (RST) otherwise.
//
//   HybridListener listener(&loop, "/run/vm/vsock.sock", [&](UniqueFd fd, uint32_t port) {
//     device.ConnectToGuest(std::move(fd), port);
//   });
//   RETURN_IF_ERROR(listener.Start());
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "event_loop.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata::vsock {

// The longest handshake line accepted ("CONNECT 4294967295\r\n" is 20 bytes).
inline constexpr size_t kMaxConnectLine = 64;

enum class ConnectLine { kIncomplete, kOk, kBad };
// Parses the start of what a client sent: "CONNECT <decimal port>\n" (a "\r" before the
// newline is tolerated). On kOk, *port is the port and *line_len the bytes to consume.
ConnectLine ParseConnectLine(std::string_view buf, uint32_t* port, size_t* line_len);

// Connects (non-blocking) to the listener for guest-initiated connections to host port `port`.
StatusOr<UniqueFd> DialHostPort(const std::string& uds_path, uint32_t port);

class HybridListener {
 public:
  using OnConnect = std::function<void(UniqueFd fd, uint32_t port)>;

  HybridListener(EventLoop* loop, std::string path, OnConnect on_connect,
                 int handshake_timeout_ms = 10000, size_t max_pending = 256);
  ~HybridListener();
  Status Start();
  size_t num_pending() const { return pending_.size(); }

 private:
  struct Pending {
    UniqueFd fd;
    EventLoop::HandlerId handler = 0;
    EventLoop::TimerId timer = 0;
  };
  void OnAccept();
  void OnClientData(uint64_t id);
  void Drop(uint64_t id);

  EventLoop* loop_;
  std::string path_;
  OnConnect on_connect_;
  int handshake_timeout_ms_;
  size_t max_pending_;
  UniqueFd listen_fd_;
  EventLoop::HandlerId listen_handler_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
};

}  // namespace kata::vsock
