// GetOOMEvent: the runtime long-polls it, one event per call.
#include "agent.pb.h"
#include "sandbox/oom_events.h"
#include "service/services.h"

namespace kata {

void RegisterEventsService(Dispatcher& d, ServiceEnv& env) {
  OomEvents* events = env.oom_events;
  d.Add<grpc::GetOOMEventRequest, grpc::OOMEvent>(
      "grpc.AgentService/GetOOMEvent",
      [events](CallContext& ctx, const grpc::GetOOMEventRequest&, grpc::OOMEvent* r) -> Status {
        if (events == nullptr) return absl::UnimplementedError("GetOOMEvent: no OOM event source");
        ASSIGN_OR_RETURN(std::string id, events->Wait(ctx));
        r->set_container_id(std::move(id));
        return absl::OkStatus();
      });
}

}  // namespace kata
