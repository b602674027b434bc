// The network part of the agent API as plain, validated structs, and back.
//
// The service converts each request once with the *FromProto functions (INVALID_ARGUMENT
// naming the field and its text on any bad value); the netlink code trusts the result.
// What the kernel reports (LinkInfo, RouteInfo) converts back with the *ToProto functions.
//
// Conventions of the API, as the Kata runtime fills them:
//   IPAddress.mask   a prefix length ("24"); a dotted IPv4 netmask is accepted too
//   Route.dest       "10.0.2.0/24"; "", "default", "0.0.0.0/0", "::/0" mean the default route
//   Route.source     the preferred source address ("10.0.2.15"; a /32 or /128 suffix is allowed)
//   Route.scope      rtm_scope (0 universe, 253 link, 254 host); Route.flags: rtm_flags
//   ARPNeighbor.state  NUD_* bits; 0 means NUD_PERMANENT
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "network/ip.h"
#include "storage/pci_path.h"
#include "types.pb.h"
#include "util/status.h"

namespace kata::net {

struct InterfaceConfig {
  std::optional<Mac> hw_addr;  // find the link by MAC when given, else by name
  std::string name;            // empty: keep the current name
  uint32_t mtu = 0;            // 0: keep the current MTU
  std::vector<IpPrefix> addresses;
  uint32_t raw_flags = 0;              // IFF_* as the host saw them (see links.h for which apply)
  std::optional<PciPath> device_path;  // of a hot-plugged NIC, e.g. "02/00"
};

struct RouteConfig {
  int family = AF_INET;
  std::optional<IpPrefix> dest;  // nullopt: the default route
  std::optional<IpAddress> gateway;
  std::string device;
  std::optional<IpAddress> source;  // preferred source (RTA_PREFSRC)
  uint8_t scope = 0;
  uint32_t flags = 0;
  uint32_t mtu = 0;  // 0: none (RTAX_MTU)

  bool is_default() const { return !dest || dest->len == 0; }
};

struct NeighbourConfig {
  IpAddress ip;
  std::string device;
  std::optional<Mac> lladdr;
  uint16_t state = 0;  // NUD_*
  uint8_t flags = 0;   // NTF_*
};

// What the kernel has.
struct LinkInfo {
  int index = 0;
  std::string name;
  std::string hw_addr;  // "52:54:00:12:34:56", "" for none
  uint32_t mtu = 0;
  uint32_t flags = 0;  // IFF_*
  std::string type;    // rtnl link kind ("veth", "bridge"); "" for a plain device
  std::vector<IpPrefix> addresses;
};

struct RouteInfo {
  RouteConfig route;  // device is the link's name
  int ifindex = 0;
  uint8_t protocol = 0;  // RTPROT_*
};

StatusOr<InterfaceConfig> InterfaceFromProto(const types::Interface& in);
StatusOr<RouteConfig> RouteFromProto(const types::Route& in);
StatusOr<NeighbourConfig> NeighbourFromProto(const types::ARPNeighbor& in);

// Link-scope (gateway-less) routes first, then routes through a gateway, the default
// route(s) last: each route's next hop is reachable by the time it is added. Stable.
void OrderRoutes(std::vector<RouteConfig>* routes);

void LinkToProto(const LinkInfo& link, types::Interface* out);
void RouteToProto(const RouteInfo& route, types::Route* out);

}  // namespace kata::net
