// IP addresses of links.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "network/netlink.h"
#include "network/spec.h"

namespace kata::net {

// Every address, by interface index, in the kernel's order.
StatusOr<std::map<int, std::vector<IpPrefix>>> ListAddresses(NlSocket& nl);

// Makes `want` the addresses of the link: the others are removed (IPv6 link-local ones
// excepted: the kernel makes them, and neighbour discovery needs them), then each of
// `want` is added or replaced (IPv4 with its broadcast address, as `ip addr add ... brd +`).
// IPv6 addresses are skipped, with a warning, when IPv6 is disabled in the guest (as
// upstream's agent does, so a dual-stack pod still starts).
Status ReplaceAddresses(NlSocket& nl, int index, const std::string& link_name,
                        const std::vector<IpPrefix>& want);

// Whether the guest has IPv6 on (net.ipv6.conf.{all,default}.disable_ipv6 = 0).
bool Ipv6Enabled();

}  // namespace kata::net
