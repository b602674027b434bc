// Static neighbour (ARP / NDP) entries.
#pragma once

#include <vector>

#include "network/netlink.h"
#include "network/spec.h"

namespace kata::net {

// Adds or replaces each entry (NUD_PERMANENT unless the request says otherwise). Every
// device is resolved first (NOT_FOUND naming it), so a bad request changes nothing.
Status AddNeighbours(NlSocket& nl, const std::vector<NeighbourConfig>& neighbours);

}  // namespace kata::net
