#include "network/network.h"

#include <netlink/route/link.h>

#include "network/addresses.h"
#include "network/links.h"
#include "network/neighbours.h"
#include "network/netlink.h"
#include "network/routes.h"
#include "storage/device_wait.h"
#include "util/log.h"

namespace kata::net {
namespace {

StatusOr<std::vector<LinkInfo>> AllLinks(NlSocket& nl) {
  ASSIGN_OR_RETURN(NlCachePtr links, LinkCache(nl));
  ASSIGN_OR_RETURN(auto addrs, ListAddresses(nl));
  std::vector<LinkInfo> out;
  for (nl_object* o = nl_cache_get_first(links.get()); o; o = nl_cache_get_next(o)) {
    LinkInfo info = LinkInfoOf(reinterpret_cast<rtnl_link*>(o));
    if (auto it = addrs.find(info.index); it != addrs.end()) info.addresses = it->second;
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

StatusOr<LinkInfo> GuestNetwork::UpdateInterface(CallContext& ctx, const InterfaceConfig& cfg) {
  if (cfg.device_path) {
    // Outside the lock: a hot-plugged NIC may take a while to appear.
    ASSIGN_OR_RETURN(Uevent ev, WaitForPciDevice(
                                    ctx, *cfg.device_path, "net",
                                    [](const Uevent&, std::string_view rest) {
                                      return IsNetInterfaceRest(rest);
                                    },
                                    hotplug_timeout_, "network interface"));
    log::Debug("network interface appeared")
        .Kv("device_path", cfg.device_path->ToString())
        .Kv("name", ev.interface);
  }
  std::lock_guard<std::mutex> lk(mu_);
  ASSIGN_OR_RETURN(NlSocket nl, NlSocket::Open());
  int index = 0;
  std::string name;
  {
    ASSIGN_OR_RETURN(NlCachePtr links, LinkCache(nl));
    ASSIGN_OR_RETURN(LinkInfo link, cfg.hw_addr ? FindLinkByMac(links.get(), *cfg.hw_addr)
                                                : FindLinkByName(links.get(), cfg.name));
    index = link.index;
    name = link.name;
  }
  if (!cfg.name.empty() && cfg.name != name) {
    RETURN_IF_ERROR(RenameLink(nl, index, cfg.name));
    name = cfg.name;
  }
  RETURN_IF_ERROR(SetLinkAttributes(nl, index, cfg.mtu, cfg.raw_flags));
  RETURN_IF_ERROR(ReplaceAddresses(nl, index, name, cfg.addresses));
  managed_.insert(index);

  ASSIGN_OR_RETURN(std::vector<LinkInfo> all, AllLinks(nl));
  for (LinkInfo& l : all) {
    if (l.index == index) {
      log::Info("interface updated")
          .Kv("name", l.name)
          .Kv("hw_addr", l.hw_addr)
          .Kv("mtu", l.mtu)
          .Kv("addresses", static_cast<uint64_t>(l.addresses.size()));
      return std::move(l);
    }
  }
  return absl::NotFoundError(StrCat("link ", name, " disappeared while being configured"));
}

StatusOr<std::vector<RouteInfo>> GuestNetwork::UpdateRoutes(std::vector<RouteConfig> routes) {
  OrderRoutes(&routes);
  std::lock_guard<std::mutex> lk(mu_);
  ASSIGN_OR_RETURN(NlSocket nl, NlSocket::Open());
  ASSIGN_OR_RETURN(std::set<int> named, ReplaceRoutes(nl, managed_, routes));
  managed_.insert(named.begin(), named.end());
  log::Info("routes updated").Kv("routes", static_cast<uint64_t>(routes.size()));
  return net::ListRoutes(nl);
}

StatusOr<std::vector<LinkInfo>> GuestNetwork::ListInterfaces() {
  std::lock_guard<std::mutex> lk(mu_);
  ASSIGN_OR_RETURN(NlSocket nl, NlSocket::Open());
  return AllLinks(nl);
}

StatusOr<std::vector<RouteInfo>> GuestNetwork::ListRoutes() {
  std::lock_guard<std::mutex> lk(mu_);
  ASSIGN_OR_RETURN(NlSocket nl, NlSocket::Open());
  return net::ListRoutes(nl);
}

Status GuestNetwork::AddNeighbours(const std::vector<NeighbourConfig>& neighbours) {
  std::lock_guard<std::mutex> lk(mu_);
  ASSIGN_OR_RETURN(NlSocket nl, NlSocket::Open());
  return net::AddNeighbours(nl, neighbours);
}

}  // namespace kata::net
