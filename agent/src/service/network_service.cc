// The network methods: UpdateInterface, UpdateRoutes, ListInterfaces, ListRoutes,
// AddARPNeighbors, GetIPTables, SetIPTables. Requests are validated into the plain
// structs of network/spec.h; network/ does the netlink work.
#include <google/protobuf/empty.pb.h>

#include <chrono>

#include "agent.pb.h"
#include "network/iptables.h"
#include "network/network.h"
#include "network/spec.h"
#include "service/services.h"

namespace kata {

void RegisterNetworkService(Dispatcher& d, ServiceEnv& env) {
  static net::GuestNetwork network(
      std::chrono::seconds(env.config ? env.config->hotplug_timeout_s : 3));
  net::GuestNetwork* nw = &network;

  d.Add<grpc::UpdateInterfaceRequest, types::Interface>(
      "grpc.AgentService/UpdateInterface",
      [nw](CallContext& ctx, const grpc::UpdateInterfaceRequest& req,
           types::Interface* resp) -> Status {
        if (!req.has_interface())
          return absl::InvalidArgumentError("UpdateInterface: no interface");
        ASSIGN_OR_RETURN(net::InterfaceConfig cfg, net::InterfaceFromProto(req.interface()));
        ASSIGN_OR_RETURN(net::LinkInfo link, nw->UpdateInterface(ctx, cfg));
        net::LinkToProto(link, resp);
        return absl::OkStatus();
      });

  d.Add<grpc::UpdateRoutesRequest, grpc::Routes>(
      "grpc.AgentService/UpdateRoutes",
      [nw](CallContext&, const grpc::UpdateRoutesRequest& req, grpc::Routes* resp) -> Status {
        if (!req.has_routes()) return absl::InvalidArgumentError("UpdateRoutes: no routes");
        std::vector<net::RouteConfig> routes;
        for (const types::Route& r : req.routes().routes()) {
          ASSIGN_OR_RETURN(net::RouteConfig rc, net::RouteFromProto(r));
          routes.push_back(std::move(rc));
        }
        ASSIGN_OR_RETURN(std::vector<net::RouteInfo> installed,
                         nw->UpdateRoutes(std::move(routes)));
        for (const net::RouteInfo& r : installed) net::RouteToProto(r, resp->add_routes());
        return absl::OkStatus();
      });

  d.Add<grpc::ListInterfacesRequest, grpc::Interfaces>(
      "grpc.AgentService/ListInterfaces",
      [nw](CallContext&, const grpc::ListInterfacesRequest&, grpc::Interfaces* resp) -> Status {
        ASSIGN_OR_RETURN(std::vector<net::LinkInfo> links, nw->ListInterfaces());
        for (const net::LinkInfo& l : links) net::LinkToProto(l, resp->add_interfaces());
        return absl::OkStatus();
      });

  d.Add<grpc::ListRoutesRequest, grpc::Routes>(
      "grpc.AgentService/ListRoutes",
      [nw](CallContext&, const grpc::ListRoutesRequest&, grpc::Routes* resp) -> Status {
        ASSIGN_OR_RETURN(std::vector<net::RouteInfo> routes, nw->ListRoutes());
        for (const net::RouteInfo& r : routes) net::RouteToProto(r, resp->add_routes());
        return absl::OkStatus();
      });

  d.Add<grpc::AddARPNeighborsRequest, google::protobuf::Empty>(
      "grpc.AgentService/AddARPNeighbors",
      [nw](CallContext&, const grpc::AddARPNeighborsRequest& req,
           google::protobuf::Empty*) -> Status {
        if (!req.has_neighbors())
          return absl::InvalidArgumentError("AddARPNeighbors: no neighbors");
        std::vector<net::NeighbourConfig> neighbours;
        for (const types::ARPNeighbor& n : req.neighbors().arpneighbors()) {
          ASSIGN_OR_RETURN(net::NeighbourConfig nc, net::NeighbourFromProto(n));
          neighbours.push_back(std::move(nc));
        }
        return nw->AddNeighbours(neighbours);
      });

  d.Add<grpc::GetIPTablesRequest, grpc::GetIPTablesResponse>(
      "grpc.AgentService/GetIPTables",
      [](CallContext&, const grpc::GetIPTablesRequest& req,
         grpc::GetIPTablesResponse* resp) -> Status {
        ASSIGN_OR_RETURN(std::string rules, net::SaveIptables(req.is_ipv6()));
        resp->set_data(std::move(rules));
        return absl::OkStatus();
      });

  d.Add<grpc::SetIPTablesRequest, grpc::SetIPTablesResponse>(
      "grpc.AgentService/SetIPTables",
      [](CallContext&, const grpc::SetIPTablesRequest& req,
         grpc::SetIPTablesResponse* resp) -> Status {
        ASSIGN_OR_RETURN(std::string out, net::RestoreIptables(req.is_ipv6(), req.data()));
        resp->set_data(std::move(out));
        return absl::OkStatus();
      });
}

}  // namespace kata
