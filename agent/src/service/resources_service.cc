// A container's resources (cgroup v2): UpdateContainer, StatsContainer, PauseContainer,
// ResumeContainer.
#include <google/protobuf/empty.pb.h>

#include "agent.pb.h"
#include "network/stats.h"
#include "runtime/cgroup_config.h"
#include "runtime/spec.h"
#include "sandbox/sandbox.h"
#include "service/services.h"
#include "util/log.h"

namespace kata {
namespace {

using Empty = google::protobuf::Empty;

StatusOr<std::shared_ptr<Container>> FindContainer(Sandbox* sb, const std::string& id) {
  RETURN_IF_ERROR(ValidateId("container_id", id));
  return sb->Get(id);
}

}  // namespace

void RegisterResourcesService(Dispatcher& d, ServiceEnv& env) {
  Sandbox* sb = env.sandbox;

  d.Add<grpc::UpdateContainerRequest, Empty>(
      "grpc.AgentService/UpdateContainer",
      [sb](CallContext&, const grpc::UpdateContainerRequest& req, Empty*) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(sb, req.container_id()));
        ASSIGN_OR_RETURN(CgroupResources r, ParseResources(req.resources(), "resources"));
        return Annotate(c->Update(r), StrCat("update container ", req.container_id()));
      });

  d.Add<grpc::StatsContainerRequest, grpc::StatsContainerResponse>(
      "grpc.AgentService/StatsContainer",
      [sb](CallContext&, const grpc::StatsContainerRequest& req,
           grpc::StatsContainerResponse* resp) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(sb, req.container_id()));
        RETURN_IF_ERROR(c->Stats(resp->mutable_cgroup_stats()));
        // The interfaces of the guest's network namespace, which the sandbox's containers
        // share (the Kata runtime gives containers no network namespace of their own).
        StatusOr<std::vector<net::NetStats>> ns = net::ReadNetStats();
        if (!ns.ok()) {
          log::Warn("StatsContainer: no network statistics").Kv("error", ns.status().ToString());
          return absl::OkStatus();
        }
        for (const net::NetStats& s : *ns) {
          grpc::NetworkStats* n = resp->add_network_stats();
          n->set_name(s.name);
          n->set_rx_bytes(s.rx_bytes);
          n->set_rx_packets(s.rx_packets);
          n->set_rx_errors(s.rx_errors);
          n->set_rx_dropped(s.rx_dropped);
          n->set_tx_bytes(s.tx_bytes);
          n->set_tx_packets(s.tx_packets);
          n->set_tx_errors(s.tx_errors);
          n->set_tx_dropped(s.tx_dropped);
        }
        return absl::OkStatus();
      });

  d.Add<grpc::PauseContainerRequest, Empty>(
      "grpc.AgentService/PauseContainer",
      [sb](CallContext& ctx, const grpc::PauseContainerRequest& req, Empty*) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(sb, req.container_id()));
        return c->Pause(ctx);
      });

  d.Add<grpc::ResumeContainerRequest, Empty>(
      "grpc.AgentService/ResumeContainer",
      [sb](CallContext& ctx, const grpc::ResumeContainerRequest& req, Empty*) -> Status {
        ASSIGN_OR_RETURN(std::shared_ptr<Container> c, FindContainer(sb, req.container_id()));
        return c->Resume(ctx);
      });
}

}  // namespace kata
