// GetIPTables / SetIPTables: iptables-save and iptables-restore from the guest image.
//
// The agent carries no packet-filter code of its own; like upstream's agent it runs the
// image's tools (ip6tables-* for IPv6), found at /usr/sbin or /sbin. An image without
// them answers FAILED_PRECONDITION saying so.
#pragma once

#include <string>

#include "util/status.h"

namespace kata::net {

// The first of /usr/sbin/<tool>, /sbin/<tool> that exists, or FAILED_PRECONDITION.
StatusOr<std::string> FindIptablesTool(bool ipv6, bool restore);

// iptables-save's output (stdout and stderr together).
StatusOr<std::string> SaveIptables(bool ipv6);

// Feeds `rules` to iptables-restore --wait 5; returns its output. A non-zero exit is
// INTERNAL with the tool's own message.
StatusOr<std::string> RestoreIptables(bool ipv6, const std::string& rules);

}  // namespace kata::net
