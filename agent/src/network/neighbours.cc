#include "network/neighbours.h"

#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>

#include "network/links.h"

namespace kata::net {

Status AddNeighbours(NlSocket& nl, const std::vector<NeighbourConfig>& neighbours) {
  ASSIGN_OR_RETURN(NlCachePtr links, LinkCache(nl));
  std::vector<int> index;
  for (const NeighbourConfig& n : neighbours) {
    StatusOr<LinkInfo> l = FindLinkByName(links.get(), n.device);
    if (!l.ok()) return Annotate(l.status(), StrCat("ARP neighbour ", FormatIp(n.ip)));
    index.push_back(l->index);
  }
  for (size_t i = 0; i < neighbours.size(); i++) {
    const NeighbourConfig& n = neighbours[i];
    NlObjPtr<rtnl_neigh> ne(rtnl_neigh_alloc());
    if (!ne) return absl::ResourceExhaustedError("cannot allocate a neighbour");
    rtnl_neigh_set_ifindex(ne.get(), index[i]);
    rtnl_neigh_set_family(ne.get(), n.ip.family);
    NlAddrPtr dst = ToNlAddr(n.ip);
    if (int err = rtnl_neigh_set_dst(ne.get(), dst.get()); err < 0)
      return NlError(err, "neighbour address");
    if (n.lladdr) {
      NlAddrPtr ll = ToNlAddr(*n.lladdr);
      rtnl_neigh_set_lladdr(ne.get(), ll.get());
    }
    rtnl_neigh_set_state(ne.get(), n.state);
    if (n.flags) rtnl_neigh_set_flags(ne.get(), n.flags);
    nl_msg* msg = nullptr;
    if (int err = rtnl_neigh_build_add_request(ne.get(), NLM_F_CREATE | NLM_F_REPLACE, &msg);
        err < 0) {
      return NlError(err, "build neighbour request");
    }
    std::string what = StrCat("add neighbour ", FormatIp(n.ip));
    if (n.lladdr) what = StrCat(what, " lladdr ", FormatHw(n.lladdr->data(), n.lladdr->size()));
    RETURN_IF_ERROR(nl.Exec(msg, StrCat(what, " dev ", n.device)));
  }
  return absl::OkStatus();
}

}  // namespace kata::net
