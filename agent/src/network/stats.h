// Per-interface traffic counters, for StatsContainer's network_stats.
//
//   ASSIGN_OR_RETURN(std::vector<net::NetStats> stats, net::ReadNetStats());
//
// The counters are those of the agent's network namespace: the guest's,
// which containers without a network namespace of their own share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata::net {

struct NetStats {
  std::string name;
  uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, rx_dropped = 0;
  uint64_t tx_bytes = 0, tx_packets = 0, tx_errors = 0, tx_dropped = 0;
};

// Every interface, lo included, in the kernel's order.
StatusOr<std::vector<NetStats>> ReadNetStats();

// Parses /proc/net/dev. INVALID_ARGUMENT on a line it cannot read.
StatusOr<std::vector<NetStats>> ParseProcNetDev(std::string_view text);

}  // namespace kata::net
