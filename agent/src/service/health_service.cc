#include "health.pb.h"
#include "service/services.h"

#if __has_include(<grpcpp/version_info.h>) && !defined(KATA_TTRPC_ONLY)
#include <grpcpp/version_info.h>
#define KATA_GRPC_VERSION GRPC_CPP_VERSION_STRING
#else
#define KATA_GRPC_VERSION "none (ttrpc only)"
#endif

namespace kata {

void DeclareApi(Dispatcher& d) { d.DeclareServices({"grpc.AgentService", "grpc.Health"}); }

void RegisterHealthService(Dispatcher& d, ServiceEnv& /*env*/) {
  d.Add<grpc::CheckRequest, grpc::HealthCheckResponse>(
      "grpc.Health/Check", [](CallContext&, const grpc::CheckRequest&, grpc::HealthCheckResponse* r) {
        r->set_status(grpc::HealthCheckResponse::SERVING);
        return absl::OkStatus();
      });
  d.Add<grpc::CheckRequest, grpc::VersionCheckResponse>(
      "grpc.Health/Version", [](CallContext&, const grpc::CheckRequest&, grpc::VersionCheckResponse* r) {
        r->set_agent_version(kAgentVersion);
        r->set_grpc_version(KATA_GRPC_VERSION);
        return absl::OkStatus();
      });
}

}  // namespace kata
