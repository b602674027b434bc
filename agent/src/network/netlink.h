// A NETLINK_ROUTE socket through libnl-route-3, with the kernel's own error text.
//
// libnl builds and parses the messages (rtnl_link, rtnl_addr, rtnl_route, rtnl_neigh) and
// dumps the tables into caches. Requests that change something go through Exec(), which
// waits for the kernel's acknowledgement itself: libnl folds errnos it does not know into
// "Unspecific failure" and drops the extended ack, while Exec() keeps the errno and the
// message the kernel attached (NETLINK_EXT_ACK), e.g.
//   "add route 10.9.0.0/16 via 10.0.2.99 dev eth0: ENETUNREACH (Network is unreachable):
//    Nexthop has invalid gateway"
//
//   ASSIGN_OR_RETURN(NlSocket nl, NlSocket::Open());
//   nl_msg* msg; rtnl_addr_build_add_request(addr, NLM_F_CREATE | NLM_F_REPLACE, &msg);
//   RETURN_IF_ERROR(nl.Exec(msg, "add address 10.0.2.15/24 to eth0"));
//
// One socket per request handler; not shared between threads.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/socket.h>

#include <memory>
#include <string_view>

#include "network/ip.h"
#include "util/status.h"

namespace kata::net {

struct NlSockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct NlMsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
struct NlCacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct NlAddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using NlMsgPtr = std::unique_ptr<nl_msg, NlMsgFree>;
using NlCachePtr = std::unique_ptr<nl_cache, NlCacheFree>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrPut>;

// A reference-counted libnl route object (rtnl_link, rtnl_addr, ...) released with
// nl_object_put.
template <typename T>
struct NlObjPut {
  void operator()(T* o) const { nl_object_put(reinterpret_cast<nl_object*>(o)); }
};
template <typename T>
using NlObjPtr = std::unique_ptr<T, NlObjPut<T>>;

class NlSocket {
 public:
  static StatusOr<NlSocket> Open();

  nl_sock* get() const { return sk_.get(); }

  // Sends msg (built by an rtnl_*_build_*_request, owned from here on) and waits for the
  // kernel's ack. On failure: "<what>: <ERRNO> (<text>)[: <kernel message>]", with a code
  // chosen from the errno (EINVAL/ERANGE INVALID_ARGUMENT, ENODEV NOT_FOUND, EEXIST
  // ALREADY_EXISTS, EPERM PERMISSION_DENIED, else INTERNAL).
  Status Exec(nl_msg* msg, std::string_view what);

 private:
  std::unique_ptr<nl_sock, NlSockFree> sk_;
};

// libnl's own failure (a dump, an allocation): "<what>: <libnl text>", INTERNAL.
Status NlError(int nlerr, std::string_view what);

// Dumps of the kernel's tables.
StatusOr<NlCachePtr> LinkCache(NlSocket& nl);
StatusOr<NlCachePtr> AddrCache(NlSocket& nl);
StatusOr<NlCachePtr> RouteCache(NlSocket& nl);

// nl_addr <-> our types. ToNlAddr sets the prefix length (len < 0: the full length).
NlAddrPtr ToNlAddr(const IpAddress& a, int prefix_len = -1);
NlAddrPtr ToNlAddr(const Mac& m);
// False for an address of another family or size.
bool FromNlAddr(nl_addr* a, IpAddress* out);

}  // namespace kata::net
