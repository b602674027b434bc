// How agent-ctl carries one unary call to the agent: gRPC or ttrpc over a connected socket.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "rpc/address.h"
#include "util/status.h"

namespace kata::ctl {

class Transport {
 public:
  virtual ~Transport() = default;
  // method: "grpc.AgentService/CreateContainer". request/response: serialized protobuf.
  virtual Status Call(const std::string& method, const std::string& request, std::string* response,
                      std::chrono::milliseconds timeout) = 0;
};

std::unique_ptr<Transport> MakeGrpcTransport(UniqueFd connected);
std::unique_ptr<Transport> MakeTtrpcTransport(UniqueFd connected);

}  // namespace kata::ctl
