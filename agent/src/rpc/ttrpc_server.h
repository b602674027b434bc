// The ttrpc transport (containerd's protocol, what the Kata runtime speaks).
#pragma once

#include "rpc/dispatcher.h"
#include "util/unique_fd.h"

namespace kata {

class TtrpcServer {
 public:
  explicit TtrpcServer(const Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
  // Serves a connected socket on threads of its own; returns at once.
  void AddConnection(UniqueFd fd);

 private:
  const Dispatcher& dispatcher_;
};

}  // namespace kata
