// Accepts connections on the agent's listening sockets and routes each one, by its first
// bytes, to the gRPC or the ttrpc server. One epoll thread does all of it without ever
// blocking: a connection that has sent nothing yet is normal (a ttrpc client writes only
// when it makes its first call) and waits in the epoll set until it speaks, closes, or
// stays silent past the sniff timeout.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "rpc/address.h"
#include "rpc/sniff.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

class Listener {
 public:
  using Handoff = std::function<void(UniqueFd conn)>;

  explicit Listener(std::chrono::milliseconds sniff_timeout) : sniff_timeout_(sniff_timeout) {}
  ~Listener();

  // Handlers for each protocol; a protocol with no handler is closed on sight.
  void OnGrpc(Handoff h) { grpc_ = std::move(h); }
  void OnTtrpc(Handoff h) { ttrpc_ = std::move(h); }

  Status Add(UniqueFd listening_socket, std::string name);
  Status Start();
  void Stop();

 private:
  struct Pending {
    UniqueFd fd;
    std::chrono::steady_clock::time_point deadline;
  };
  void Loop();
  void AcceptAll(int lfd);
  void Examine(int fd);
  void Drop(int fd);

  std::chrono::milliseconds sniff_timeout_;
  Handoff grpc_, ttrpc_;
  UniqueFd epoll_, stop_;
  std::vector<std::pair<UniqueFd, std::string>> listeners_;
  std::map<int, Pending> pending_;
  std::thread thread_;
};

}  // namespace kata
