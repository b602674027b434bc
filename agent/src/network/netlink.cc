#include "network/netlink.h"

#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

namespace kata::net {
namespace {

struct AckState {
  bool done = false;
  int error = 0;        // positive errno from the kernel's NLMSG_ERROR
  std::string message;  // NLMSGERR_ATTR_MSG, if the kernel gave one
};

// The extended ack: with NETLINK_CAP_ACK the kernel echoes only the request's header, and
// with NETLINK_EXT_ACK it appends attributes after the nlmsgerr (NLM_F_ACK_TLVS).
std::string ExtAckMessage(const nlmsgerr* e) {
  const auto* hdr =
      reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(e) - NLMSG_HDRLEN);
  if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  size_t off = sizeof(nlmsgerr);
  if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
  off = NLMSG_ALIGN(off);
  const size_t payload = hdr->nlmsg_len - NLMSG_HDRLEN;
  const char* base = reinterpret_cast<const char*>(e);
  while (off + NLA_HDRLEN <= payload) {
    nlattr a;
    memcpy(&a, base + off, sizeof(a));
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > payload) break;
    if ((a.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a.nla_len > NLA_HDRLEN) {
      return std::string(base + off + NLA_HDRLEN,
                         strnlen(base + off + NLA_HDRLEN, a.nla_len - NLA_HDRLEN));
    }
    off += NLA_ALIGN(a.nla_len);
  }
  return {};
}

int OnError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  auto* st = static_cast<AckState*>(arg);
  st->done = true;
  st->error = -e->error;
  st->message = ExtAckMessage(e);
  return NL_STOP;
}

int OnAck(nl_msg*, void* arg) {
  static_cast<AckState*>(arg)->done = true;
  return NL_STOP;
}

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case EINVAL:
    case ERANGE:
      return absl::StatusCode::kInvalidArgument;
    case ENODEV:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EPERM:
    case EACCES:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

Status NlError(int nlerr, std::string_view what) {
  return absl::InternalError(StrCat(what, ": ", nl_geterror(nlerr < 0 ? -nlerr : nlerr)));
}

StatusOr<NlSocket> NlSocket::Open() {
  NlSocket s;
  s.sk_.reset(nl_socket_alloc());
  if (!s.sk_) return absl::ResourceExhaustedError("netlink: cannot allocate a socket");
  if (int err = nl_connect(s.sk_.get(), NETLINK_ROUTE); err < 0) {
    return NlError(err, "netlink: connect NETLINK_ROUTE");
  }
  nl_socket_enable_msg_peek(s.sk_.get());  // dumps of many routes need more than a page
  int one = 1;
  const int fd = nl_socket_get_fd(s.sk_.get());
  // Best effort: a kernel without these still reports the errno.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  return s;
}

Status NlSocket::Exec(nl_msg* raw, std::string_view what) {
  NlMsgPtr msg(raw);
  if (!msg) return absl::InternalError(StrCat(what, ": no message"));
  int err = nl_send_auto(sk_.get(), msg.get());
  if (err < 0) return NlError(err, StrCat(what, ": send"));

  AckState st;
  std::unique_ptr<nl_cb, decltype(&nl_cb_put)> cb(nl_cb_clone(nl_socket_get_cb(sk_.get())),
                                                  &nl_cb_put);
  if (!cb)
    return absl::ResourceExhaustedError(StrCat(what, ": cannot allocate a netlink callback"));
  nl_cb_err(cb.get(), NL_CB_CUSTOM, &OnError, &st);
  nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, &OnAck, &st);
  while (!st.done) {
    err = nl_recvmsgs(sk_.get(), cb.get());
    if (st.error) break;
    if (err < 0) return NlError(err, StrCat(what, ": receive"));
  }
  if (st.error) {
    std::string text = StrCat(what, ": ", ErrnoText(st.error));
    if (!st.message.empty()) text = StrCat(text, ": ", st.message);
    return Status(CodeForErrno(st.error), text);
  }
  return absl::OkStatus();
}

StatusOr<NlCachePtr> LinkCache(NlSocket& nl) {
  nl_cache* c = nullptr;
  if (int err = rtnl_link_alloc_cache(nl.get(), AF_UNSPEC, &c); err < 0)
    return NlError(err, "list links");
  return NlCachePtr(c);
}

StatusOr<NlCachePtr> AddrCache(NlSocket& nl) {
  nl_cache* c = nullptr;
  if (int err = rtnl_addr_alloc_cache(nl.get(), &c); err < 0) return NlError(err, "list addresses");
  return NlCachePtr(c);
}

StatusOr<NlCachePtr> RouteCache(NlSocket& nl) {
  nl_cache* c = nullptr;
  if (int err = rtnl_route_alloc_cache(nl.get(), AF_UNSPEC, 0, &c); err < 0)
    return NlError(err, "list routes");
  return NlCachePtr(c);
}

NlAddrPtr ToNlAddr(const IpAddress& a, int prefix_len) {
  NlAddrPtr out(nl_addr_build(a.family, a.bytes.data(), a.size()));
  if (out) nl_addr_set_prefixlen(out.get(), prefix_len < 0 ? a.max_prefix() : prefix_len);
  return out;
}

NlAddrPtr ToNlAddr(const Mac& m) { return NlAddrPtr(nl_addr_build(AF_LLC, m.data(), m.size())); }

bool FromNlAddr(nl_addr* a, IpAddress* out) {
  if (!a) return false;
  const int family = nl_addr_get_family(a);
  const size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
  if (!want || nl_addr_get_len(a) != want) return false;
  *out = IpAddress{};
  out->family = family;
  memcpy(out->bytes.data(), nl_addr_get_binary_addr(a), want);
  return true;
}

}  // namespace kata::net
