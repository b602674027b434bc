#include "network/links.h"

#include <net/if.h>
#include <netlink/route/link.h>

#include <cstring>

namespace kata::net {
namespace {

using LinkPtr = NlObjPtr<rtnl_link>;

LinkPtr NewLink() { return LinkPtr(rtnl_link_alloc()); }

Status SetUp(NlSocket& nl, rtnl_link* orig, bool up) {
  LinkPtr change = NewLink();
  if (up) {
    rtnl_link_set_flags(change.get(), IFF_UP);
  } else {
    rtnl_link_unset_flags(change.get(), IFF_UP);
  }
  nl_msg* msg = nullptr;
  if (int err = rtnl_link_build_change_request(orig, change.get(), 0, &msg); err < 0) {
    return NlError(err, "build link request");
  }
  return nl.Exec(msg, StrCat("set link ", rtnl_link_get_name(orig), up ? " up" : " down"));
}

Status SetName(NlSocket& nl, rtnl_link* orig, const std::string& name) {
  LinkPtr change = NewLink();
  rtnl_link_set_name(change.get(), name.c_str());
  nl_msg* msg = nullptr;
  if (int err = rtnl_link_build_change_request(orig, change.get(), 0, &msg); err < 0) {
    return NlError(err, "build link request");
  }
  return nl.Exec(msg, StrCat("rename link ", rtnl_link_get_name(orig), " to ", name));
}

// A fresh view of one link (its name and flags change under us).
StatusOr<LinkPtr> GetLink(NlSocket& nl, int index) {
  rtnl_link* l = nullptr;
  if (int err = rtnl_link_get_kernel(nl.get(), index, nullptr, &l); err < 0) {
    return NlError(err, StrCat("get link ", index));
  }
  return LinkPtr(l);
}

}  // namespace

LinkInfo LinkInfoOf(rtnl_link* link) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(link);
  if (const char* n = rtnl_link_get_name(link)) info.name = n;
  if (nl_addr* a = rtnl_link_get_addr(link); a && nl_addr_get_len(a) > 0) {
    info.hw_addr =
        FormatHw(static_cast<const uint8_t*>(nl_addr_get_binary_addr(a)), nl_addr_get_len(a));
  }
  info.mtu = rtnl_link_get_mtu(link);
  info.flags = rtnl_link_get_flags(link);
  if (const char* t = rtnl_link_get_type(link)) info.type = t;
  return info;
}

StatusOr<LinkInfo> FindLinkByMac(nl_cache* links, const Mac& mac) {
  for (nl_object* o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    nl_addr* a = rtnl_link_get_addr(l);
    if (a && nl_addr_get_len(a) == mac.size() &&
        memcmp(nl_addr_get_binary_addr(a), mac.data(), mac.size()) == 0) {
      return LinkInfoOf(l);
    }
  }
  return absl::NotFoundError(StrCat("no link with hwAddr ", FormatHw(mac.data(), mac.size())));
}

StatusOr<LinkInfo> FindLinkByName(nl_cache* links, const std::string& name) {
  LinkPtr l(rtnl_link_get_by_name(links, name.c_str()));
  if (!l) return absl::NotFoundError(StrCat("no link named ", name));
  return LinkInfoOf(l.get());
}

Status RenameLink(NlSocket& nl, int index, const std::string& name) {
  ASSIGN_OR_RETURN(LinkPtr ours, GetLink(nl, index));
  const std::string old_name = rtnl_link_get_name(ours.get());
  if (old_name == name) return absl::OkStatus();

  LinkPtr other;
  bool other_was_up = false;
  {
    rtnl_link* l = nullptr;
    if (rtnl_link_get_kernel(nl.get(), 0, name.c_str(), &l) >= 0 && l) other.reset(l);
  }
  if (rtnl_link_get_flags(ours.get()) & IFF_UP) RETURN_IF_ERROR(SetUp(nl, ours.get(), false));
  if (other) {
    // The temporary name is unique: an interface index is.
    const std::string tmp = StrCat("katatmp", rtnl_link_get_ifindex(other.get()));
    other_was_up = rtnl_link_get_flags(other.get()) & IFF_UP;
    if (other_was_up) RETURN_IF_ERROR(SetUp(nl, other.get(), false));
    RETURN_IF_ERROR(SetName(nl, other.get(), tmp));
    ASSIGN_OR_RETURN(other, GetLink(nl, rtnl_link_get_ifindex(other.get())));
  }
  RETURN_IF_ERROR(SetName(nl, ours.get(), name));
  if (other) {
    RETURN_IF_ERROR(SetName(nl, other.get(), old_name));
    if (other_was_up) {
      ASSIGN_OR_RETURN(other, GetLink(nl, rtnl_link_get_ifindex(other.get())));
      RETURN_IF_ERROR(SetUp(nl, other.get(), true));
    }
  }
  return absl::OkStatus();
}

Status SetLinkAttributes(NlSocket& nl, int index, uint32_t mtu, uint32_t raw_flags) {
  ASSIGN_OR_RETURN(LinkPtr orig, GetLink(nl, index));
  LinkPtr change = NewLink();
  if (mtu != 0 && mtu != rtnl_link_get_mtu(orig.get())) rtnl_link_set_mtu(change.get(), mtu);
  const unsigned set = (raw_flags & kSettableLinkFlags) | IFF_UP;
  const unsigned clear = kSettableLinkFlags & ~raw_flags;
  rtnl_link_set_flags(change.get(), set);
  if (clear) rtnl_link_unset_flags(change.get(), clear);
  nl_msg* msg = nullptr;
  if (int err = rtnl_link_build_change_request(orig.get(), change.get(), 0, &msg); err < 0) {
    return NlError(err, "build link request");
  }
  std::string what = StrCat("set link ", rtnl_link_get_name(orig.get()));
  if (mtu != 0) what = StrCat(what, " mtu ", mtu);
  return nl.Exec(msg, StrCat(what, " up"));
}

}  // namespace kata::net
