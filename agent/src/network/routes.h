// Routes of the main table.
#pragma once

#include <set>
#include <vector>

#include "network/netlink.h"
#include "network/spec.h"

namespace kata::net {

// The unicast routes of the main table (IPv4 then IPv6), device names resolved.
StatusOr<std::vector<RouteInfo>> ListRoutes(NlSocket& nl);

// Replaces the routes of the managed links (`managed` plus every device the routes name;
// never lo) with `routes`, added in the given order (see OrderRoutes). Routes the kernel
// made for addresses (proto kernel) stay: they follow the addresses. Every device is
// resolved before anything changes (NOT_FOUND naming it). IPv6 routes are skipped, with
// a warning, when IPv6 is disabled in the guest. Returns the indexes of the links the
// routes name.
StatusOr<std::set<int>> ReplaceRoutes(NlSocket& nl, const std::set<int>& managed,
                                      const std::vector<RouteConfig>& routes);

// "10.0.2.0/24 via 10.0.2.2 dev eth0", for messages.
std::string DescribeRoute(const RouteConfig& r);

}  // namespace kata::net
