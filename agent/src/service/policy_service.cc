// SetPolicy: installs the API policy (policy/policy.h) once, when none was given at boot.
#include "agent.pb.h"
#include "policy/policy.h"
#include "service/services.h"

namespace kata {

void RegisterPolicyService(Dispatcher& d, ServiceEnv& env) {
  PolicyStore* store = env.policy;
  d.Add<grpc::SetPolicyRequest, google::protobuf::Empty>(
      "grpc.AgentService/SetPolicy",
      [store, &d](CallContext&, const grpc::SetPolicyRequest& req, google::protobuf::Empty*) {
        ASSIGN_OR_RETURN(
            Policy p, Policy::Parse(req.policy(), [&d](std::string_view m) { return d.Known(m); }));
        return store->Install(std::move(p), "SetPolicy");
      });
}

}  // namespace kata
