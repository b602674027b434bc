#include "network/routes.h"

#include <linux/rtnetlink.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>

#include "network/addresses.h"
#include "network/links.h"
#include "util/log.h"

namespace kata::net {
namespace {

using RoutePtr = NlObjPtr<rtnl_route>;

std::string LinkName(nl_cache* links, int index) {
  char buf[64];
  if (rtnl_link_i2name(links, index, buf, sizeof(buf))) return buf;
  return {};
}

bool UsesLink(rtnl_route* r, const std::set<int>& links) {
  for (int i = 0; i < rtnl_route_get_nnexthops(r); i++) {
    if (links.count(rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, i)))) return true;
  }
  return false;
}

}  // namespace

std::string DescribeRoute(const RouteConfig& r) {
  std::string s = r.is_default() ? std::string("default") : FormatCidr(*r.dest);
  if (r.gateway) s = StrCat(s, " via ", FormatIp(*r.gateway));
  s = StrCat(s, " dev ", r.device);
  if (r.source) s = StrCat(s, " src ", FormatIp(*r.source));
  return s;
}

StatusOr<std::vector<RouteInfo>> ListRoutes(NlSocket& nl) {
  ASSIGN_OR_RETURN(NlCachePtr links, LinkCache(nl));
  ASSIGN_OR_RETURN(NlCachePtr cache, RouteCache(nl));
  std::vector<RouteInfo> v4, v6;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST) continue;
    const int family = rtnl_route_get_family(r);
    if (family != AF_INET && family != AF_INET6) continue;
    RouteInfo info;
    RouteConfig& rc = info.route;
    rc.family = family;
    IpPrefix dst;
    nl_addr* d = rtnl_route_get_dst(r);
    if (d && nl_addr_get_prefixlen(d) > 0 && FromNlAddr(d, &dst.addr)) {
      dst.len = static_cast<int>(nl_addr_get_prefixlen(d));
      rc.dest = dst;
    }
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      IpAddress gw;
      if (FromNlAddr(rtnl_route_nh_get_gateway(nh), &gw)) rc.gateway = gw;
      info.ifindex = rtnl_route_nh_get_ifindex(nh);
      rc.device = LinkName(links.get(), info.ifindex);
    }
    IpAddress src;
    if (FromNlAddr(rtnl_route_get_pref_src(r), &src)) rc.source = src;
    rc.scope = rtnl_route_get_scope(r);
    rc.flags = rtnl_route_get_flags(r);
    uint32_t mtu = 0;
    if (rtnl_route_get_metric(r, RTAX_MTU, &mtu) == 0) rc.mtu = mtu;
    info.protocol = rtnl_route_get_protocol(r);
    (family == AF_INET ? v4 : v6).push_back(std::move(info));
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

StatusOr<std::set<int>> ReplaceRoutes(NlSocket& nl, const std::set<int>& managed,
                                      const std::vector<RouteConfig>& routes) {
  ASSIGN_OR_RETURN(NlCachePtr links, LinkCache(nl));
  std::vector<int> index(routes.size());
  std::set<int> named;
  for (size_t i = 0; i < routes.size(); i++) {
    StatusOr<LinkInfo> l = FindLinkByName(links.get(), routes[i].device);
    if (!l.ok()) return Annotate(l.status(), StrCat("route ", DescribeRoute(routes[i])));
    index[i] = l->index;
    named.insert(l->index);
  }
  std::set<int> clear = managed;
  clear.insert(named.begin(), named.end());
  if (int lo = rtnl_link_name2i(links.get(), "lo"); lo > 0) clear.erase(lo);

  // Remove the routes of the managed links, except those that belong to an address.
  {
    ASSIGN_OR_RETURN(NlCachePtr cache, RouteCache(nl));
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
      auto* r = reinterpret_cast<rtnl_route*>(o);
      if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST)
        continue;
      if (rtnl_route_get_protocol(r) == RTPROT_KERNEL || !UsesLink(r, clear)) continue;
      char buf[128];
      nl_addr* d = rtnl_route_get_dst(r);
      std::string what = StrCat("remove route ", d ? nl_addr2str(d, buf, sizeof(buf)) : "default");
      nl_msg* msg = nullptr;
      if (int err = rtnl_route_build_del_request(r, 0, &msg); err < 0)
        return NlError(err, "build route request");
      Status st = nl.Exec(msg, what);
      // ESRCH: it went with a route removed before it.
      if (!st.ok() && st.message().find("ESRCH") == absl::string_view::npos) return st;
    }
  }

  const bool v6 = Ipv6Enabled();
  for (size_t i = 0; i < routes.size(); i++) {
    const RouteConfig& rc = routes[i];
    if (rc.family == AF_INET6 && !v6) {
      log::Warn("IPv6 is disabled in the guest: route skipped").Kv("route", DescribeRoute(rc));
      continue;
    }
    RoutePtr r(rtnl_route_alloc());
    if (!r) return absl::ResourceExhaustedError("cannot allocate a route");
    rtnl_route_set_family(r.get(), static_cast<uint8_t>(rc.family));
    rtnl_route_set_table(r.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(r.get(), RTPROT_BOOT);
    rtnl_route_set_type(r.get(), RTN_UNICAST);
    rtnl_route_set_scope(r.get(), rc.scope);
    rtnl_route_set_flags(r.get(), rc.flags);
    IpAddress zero;
    zero.family = rc.family;
    NlAddrPtr dst = rc.is_default() ? ToNlAddr(zero, 0) : ToNlAddr(rc.dest->addr, rc.dest->len);
    if (int err = rtnl_route_set_dst(r.get(), dst.get()); err < 0)
      return NlError(err, "route dest");
    if (rc.source) {
      NlAddrPtr src = ToNlAddr(*rc.source);
      if (int err = rtnl_route_set_pref_src(r.get(), src.get()); err < 0)
        return NlError(err, "route source");
    }
    if (rc.mtu) rtnl_route_set_metric(r.get(), RTAX_MTU, rc.mtu);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!nh) return absl::ResourceExhaustedError("cannot allocate a next hop");
    rtnl_route_nh_set_ifindex(nh, index[i]);
    if (rc.gateway) {
      NlAddrPtr gw = ToNlAddr(*rc.gateway);
      rtnl_route_nh_set_gateway(nh, gw.get());
    }
    rtnl_route_add_nexthop(r.get(), nh);  // the route owns it now
    nl_msg* msg = nullptr;
    if (int err = rtnl_route_build_add_request(r.get(), NLM_F_CREATE | NLM_F_REPLACE, &msg);
        err < 0) {
      return NlError(err, "build route request");
    }
    RETURN_IF_ERROR(nl.Exec(msg, StrCat("add route ", DescribeRoute(rc))));
  }
  return named;
}

}  // namespace kata::net
