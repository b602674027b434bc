// Network links: find, rename, MTU, flags, up; read back as LinkInfo.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "network/netlink.h"
#include "network/spec.h"

struct rtnl_link;

namespace kata::net {

// The flags of InterfaceConfig::raw_flags that UpdateInterface applies (set or cleared as
// given). IFF_UP is always set; the kernel's own (RUNNING, LOWER_UP, ...) and MULTICAST
// (which IPv6 needs, and which a zero raw_flags would otherwise clear) are left alone.
inline constexpr unsigned kSettableLinkFlags =
    0x80 /*IFF_NOARP*/ | 0x100 /*IFF_PROMISC*/ | 0x200 /*IFF_ALLMULTI*/;

LinkInfo LinkInfoOf(rtnl_link* link);  // without addresses

// NOT_FOUND "no link with hwAddr 52:54:..." / "no link named eth9".
StatusOr<LinkInfo> FindLinkByMac(nl_cache* links, const Mac& mac);
StatusOr<LinkInfo> FindLinkByName(nl_cache* links, const std::string& name);

// Renames link `index` to `name`; a link that already has that name takes the old name
// of `index` in exchange (as upstream's agent does: the runtime's names win). Both links
// are brought down for the rename; the other one is brought back up if it was.
Status RenameLink(NlSocket& nl, int index, const std::string& name);

// Sets the MTU (if non-zero), the settable raw flags, and IFF_UP, in one request.
Status SetLinkAttributes(NlSocket& nl, int index, uint32_t mtu, uint32_t raw_flags);

}  // namespace kata::net
