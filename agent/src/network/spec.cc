#include "network/spec.h"

#include <linux/neighbour.h>

#include <algorithm>

namespace kata::net {
namespace {

types::IPFamily ProtoFamily(int family) { return family == AF_INET6 ? types::v6 : types::v4; }

bool IsDefaultDest(const std::string& dest) {
  return dest.empty() || dest == "default" || dest == "0.0.0.0/0" || dest == "::/0";
}

}  // namespace

StatusOr<InterfaceConfig> InterfaceFromProto(const types::Interface& in) {
  InterfaceConfig c;
  if (!in.hwaddr().empty()) {
    ASSIGN_OR_RETURN(c.hw_addr, ParseMac(in.hwaddr(), "interface hwAddr"));
  }
  if (!c.hw_addr && in.name().empty()) {
    return absl::InvalidArgumentError("interface: neither hwAddr nor name is given");
  }
  if (in.name().size() >= 16 || in.name().find_first_of("/: \t\n") != std::string::npos ||
      in.name() == "." || in.name() == "..") {
    return absl::InvalidArgumentError(
        StrCat("interface name '", in.name(), "': not a valid link name"));
  }
  c.name = in.name();
  if (in.mtu() > UINT32_MAX) {
    return absl::InvalidArgumentError(StrCat("interface mtu ", in.mtu(), ": too large"));
  }
  c.mtu = static_cast<uint32_t>(in.mtu());
  for (const types::IPAddress& a : in.ipaddresses()) {
    ASSIGN_OR_RETURN(IpAddress ip, ParseIp(a.address(), "interface address"));
    if (a.family() == types::v6 && ip.family != AF_INET6) {
      return absl::InvalidArgumentError(
          StrCat("interface address '", a.address(), "': family v6 but an IPv4 address"));
    }
    ASSIGN_OR_RETURN(int len,
                     ParseMask(a.mask(), ip.family, StrCat("mask of address ", a.address())));
    IpPrefix p{ip, len};
    if (std::find(c.addresses.begin(), c.addresses.end(), p) == c.addresses.end()) {
      c.addresses.push_back(p);
    }
  }
  c.raw_flags = in.raw_flags();
  if (!in.devicepath().empty()) {
    ASSIGN_OR_RETURN(c.device_path, ParsePciPath(in.devicepath()));
  }
  return c;
}

StatusOr<RouteConfig> RouteFromProto(const types::Route& in) {
  RouteConfig r;
  const std::string where = StrCat("route '", in.dest().empty() ? "default" : in.dest(), "'");
  int family = 0;  // from the addresses; the family field only for a bare default route
  auto take_family = [&](int f, std::string_view field) -> Status {
    if (family && family != f) {
      return absl::InvalidArgumentError(
          StrCat(where, ": ", field, " is of another address family"));
    }
    family = f;
    return absl::OkStatus();
  };
  if (!IsDefaultDest(in.dest())) {
    ASSIGN_OR_RETURN(IpPrefix d, ParseCidr(in.dest(), "route dest"));
    if (HasHostBits(d)) {
      return absl::InvalidArgumentError(
          StrCat("route dest '", in.dest(), "': host bits are set (", FormatCidr(Masked(d)), "?)"));
    }
    RETURN_IF_ERROR(take_family(d.addr.family, "dest"));
    if (d.len > 0) r.dest = d;
  } else if (in.dest() == "::/0") {
    RETURN_IF_ERROR(take_family(AF_INET6, "dest"));
  } else if (in.dest() == "0.0.0.0/0") {
    RETURN_IF_ERROR(take_family(AF_INET, "dest"));
  }
  if (!in.gateway().empty()) {
    ASSIGN_OR_RETURN(IpAddress gw, ParseIp(in.gateway(), "route gateway"));
    RETURN_IF_ERROR(take_family(gw.family, "gateway"));
    r.gateway = gw;
  }
  if (!in.source().empty()) {
    ASSIGN_OR_RETURN(IpPrefix src, ParseCidr(in.source(), "route source"));
    if (src.len != 0 && src.len != src.addr.max_prefix()) {
      return absl::InvalidArgumentError(
          StrCat("route source '", in.source(), "': a preferred source address, not a prefix"));
    }
    RETURN_IF_ERROR(take_family(src.addr.family, "source"));
    r.source = src.addr;
  }
  if (in.device().empty()) {
    return absl::InvalidArgumentError(StrCat(where, ": no device"));
  }
  r.device = in.device();
  r.family = family ? family : (in.family() == types::v6 ? AF_INET6 : AF_INET);
  if (in.scope() > 255) {
    return absl::InvalidArgumentError(
        StrCat(where, ": scope ", in.scope(), " is not a route scope"));
  }
  r.scope = static_cast<uint8_t>(in.scope());
  r.flags = in.flags();
  r.mtu = in.mtu();
  return r;
}

StatusOr<NeighbourConfig> NeighbourFromProto(const types::ARPNeighbor& in) {
  NeighbourConfig n;
  if (!in.has_toipaddress() || in.toipaddress().address().empty()) {
    return absl::InvalidArgumentError("ARP neighbour: no toIPAddress");
  }
  ASSIGN_OR_RETURN(n.ip, ParseIp(in.toipaddress().address(), "ARP neighbour toIPAddress"));
  if (in.device().empty()) {
    return absl::InvalidArgumentError(
        StrCat("ARP neighbour ", in.toipaddress().address(), ": no device"));
  }
  n.device = in.device();
  if (!in.lladdr().empty()) {
    ASSIGN_OR_RETURN(n.lladdr, ParseMac(in.lladdr(), "ARP neighbour lladdr"));
  }
  if (in.state() < 0 || in.state() > 0xffff) {
    return absl::InvalidArgumentError(StrCat("ARP neighbour state ", in.state(), ": out of range"));
  }
  n.state = in.state() == 0 ? NUD_PERMANENT : static_cast<uint16_t>(in.state());
  if (in.flags() < 0 || in.flags() > 0xff) {
    return absl::InvalidArgumentError(StrCat("ARP neighbour flags ", in.flags(), ": out of range"));
  }
  n.flags = static_cast<uint8_t>(in.flags());
  return n;
}

void OrderRoutes(std::vector<RouteConfig>* routes) {
  auto rank = [](const RouteConfig& r) {
    if (r.is_default()) return 2;
    return r.gateway ? 1 : 0;
  };
  std::stable_sort(routes->begin(), routes->end(),
                   [&](const RouteConfig& a, const RouteConfig& b) { return rank(a) < rank(b); });
}

void LinkToProto(const LinkInfo& link, types::Interface* out) {
  out->set_device(link.name);
  out->set_name(link.name);
  out->set_mtu(link.mtu);
  out->set_hwaddr(link.hw_addr);
  out->set_type(link.type);
  out->set_raw_flags(link.flags);
  for (const IpPrefix& p : link.addresses) {
    types::IPAddress* a = out->add_ipaddresses();
    a->set_family(ProtoFamily(p.addr.family));
    a->set_address(FormatIp(p.addr));
    a->set_mask(std::to_string(p.len));
  }
}

void RouteToProto(const RouteInfo& info, types::Route* out) {
  const RouteConfig& r = info.route;
  // The default route has an empty dest, as the Kata runtime sends it.
  if (r.dest && r.dest->len > 0) out->set_dest(FormatCidr(*r.dest));
  if (r.gateway) out->set_gateway(FormatIp(*r.gateway));
  out->set_device(r.device);
  if (r.source) out->set_source(FormatIp(*r.source));
  out->set_scope(r.scope);
  out->set_family(ProtoFamily(r.family));
  out->set_flags(r.flags);
  out->set_mtu(r.mtu);
}

}  // namespace kata::net
