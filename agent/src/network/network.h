// The guest's network configuration, as the agent API changes it.
//
// One GuestNetwork serves every network RPC. Changes are serialized by one lock (a
// rename or a route replacement is several netlink requests); each call opens its own
// NETLINK_ROUTE socket in the agent's network namespace, the guest's.
//
//   GuestNetwork net(std::chrono::seconds(cfg.hotplug_timeout_s));
//   ASSIGN_OR_RETURN(net::InterfaceConfig ic, net::InterfaceFromProto(req.interface()));
//   ASSIGN_OR_RETURN(net::LinkInfo link, net.UpdateInterface(ctx, ic));
#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <vector>

#include "network/spec.h"
#include "rpc/call_context.h"
#include "util/status.h"

namespace kata::net {

class GuestNetwork {
 public:
  explicit GuestNetwork(std::chrono::milliseconds hotplug_timeout)
      : hotplug_timeout_(hotplug_timeout) {}

  // Waits for the NIC at cfg.device_path (if given; through the uevent monitor, with one PCI
  // rescan, as block devices are awaited), finds the link by cfg.hw_addr, else
  // by cfg.name (NOT_FOUND), renames it, sets the MTU and raw flags, brings it up, and
  // makes cfg.addresses its addresses. Returns the link as the kernel then has it.
  StatusOr<LinkInfo> UpdateInterface(CallContext& ctx, const InterfaceConfig& cfg);

  // Replaces the routes of the managed links (those UpdateInterface configured, and
  // those the routes name) with `routes`, ordered by OrderRoutes. Returns every route of
  // the main table afterwards.
  StatusOr<std::vector<RouteInfo>> UpdateRoutes(std::vector<RouteConfig> routes);

  StatusOr<std::vector<LinkInfo>> ListInterfaces();
  StatusOr<std::vector<RouteInfo>> ListRoutes();
  Status AddNeighbours(const std::vector<NeighbourConfig>& neighbours);

 private:
  const std::chrono::milliseconds hotplug_timeout_;
  std::mutex mu_;
  std::set<int> managed_;  // interface indexes
};

}  // namespace kata::net
