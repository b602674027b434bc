// The gRPC transport: one grpc::Server with no listening port of its own. Connections
// accepted by our listener are handed over with AddInsecureChannelFromFd; every call is
// served by a generic (method-agnostic) handler that forwards to the Dispatcher on a
// worker thread, so gRPC's own threads never block in a handler.
#pragma once

#include <memory>

#include "rpc/dispatcher.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace grpc {
class Server;
}

namespace kata {

class GrpcServer {
 public:
  explicit GrpcServer(const Dispatcher& dispatcher);
  ~GrpcServer();

  Status Start();
  // Takes a connected, non-blocking stream socket.
  void AddConnection(UniqueFd fd);
  void Shutdown();

 private:
  class Service;
  const Dispatcher& dispatcher_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace kata
