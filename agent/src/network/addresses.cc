#include "network/addresses.h"

#include <netlink/route/addr.h>

#include <algorithm>

#include "util/fs.h"
#include "util/log.h"

namespace kata::net {
namespace {

using AddrPtr = NlObjPtr<rtnl_addr>;

bool PrefixOf(rtnl_addr* a, IpPrefix* out) {
  if (!FromNlAddr(rtnl_addr_get_local(a), &out->addr)) return false;
  out->len = static_cast<int>(rtnl_addr_get_prefixlen(a));
  return true;
}

}  // namespace

bool Ipv6Enabled() {
  for (const char* p : {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                        "/proc/sys/net/ipv6/conf/default/disable_ipv6"}) {
    StatusOr<std::string> s = ReadFileString(p, 16);
    if (s.ok() && !s->empty() && (*s)[0] == '0') return true;
  }
  return false;
}

StatusOr<std::map<int, std::vector<IpPrefix>>> ListAddresses(NlSocket& nl) {
  ASSIGN_OR_RETURN(NlCachePtr cache, AddrCache(nl));
  std::map<int, std::vector<IpPrefix>> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    IpPrefix p;
    if (PrefixOf(a, &p)) out[rtnl_addr_get_ifindex(a)].push_back(p);
  }
  return out;
}

Status ReplaceAddresses(NlSocket& nl, int index, const std::string& link_name,
                        const std::vector<IpPrefix>& want) {
  const bool v6 = Ipv6Enabled();
  ASSIGN_OR_RETURN(NlCachePtr cache, AddrCache(nl));
  // Remove first: removing an IPv4 primary address also removes its secondaries, which
  // the adds below then bring back if they are wanted.
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    IpPrefix p;
    if (rtnl_addr_get_ifindex(a) != index || !PrefixOf(a, &p)) continue;
    if (p.addr.IsV6LinkLocal()) continue;
    if (std::find(want.begin(), want.end(), p) != want.end()) continue;
    nl_msg* msg = nullptr;
    if (int err = rtnl_addr_build_delete_request(a, 0, &msg); err < 0)
      return NlError(err, "build address request");
    Status st = nl.Exec(msg, StrCat("remove address ", FormatCidr(p), " from ", link_name));
    // EADDRNOTAVAIL: it went with a primary address removed just before.
    if (!st.ok() && st.message().find("EADDRNOTAVAIL") == absl::string_view::npos) return st;
  }
  for (const IpPrefix& p : want) {
    if (p.addr.family == AF_INET6 && !v6) {
      log::Warn("IPv6 is disabled in the guest: address skipped")
          .Kv("link", link_name)
          .Kv("address", FormatCidr(p));
      continue;
    }
    AddrPtr a(rtnl_addr_alloc());
    if (!a) return absl::ResourceExhaustedError("cannot allocate an address");
    rtnl_addr_set_ifindex(a.get(), index);
    rtnl_addr_set_family(a.get(), p.addr.family);
    NlAddrPtr local = ToNlAddr(p.addr, p.len);
    if (int err = rtnl_addr_set_local(a.get(), local.get()); err < 0)
      return NlError(err, "address");
    rtnl_addr_set_prefixlen(a.get(), p.len);
    if (p.addr.family == AF_INET && p.len <= 30) {
      NlAddrPtr brd = ToNlAddr(Broadcast(p));
      if (int err = rtnl_addr_set_broadcast(a.get(), brd.get()); err < 0)
        return NlError(err, "broadcast");
    }
    nl_msg* msg = nullptr;
    if (int err = rtnl_addr_build_add_request(a.get(), NLM_F_CREATE | NLM_F_REPLACE, &msg);
        err < 0) {
      return NlError(err, "build address request");
    }
    RETURN_IF_ERROR(nl.Exec(msg, StrCat("add address ", FormatCidr(p), " to ", link_name)));
  }
  return absl::OkStatus();
}

}  // namespace kata::net
