// IP addresses, prefixes, netmasks and MAC addresses as the agent API spells them.
//
// Pure text <-> bytes helpers (no system calls), used to validate requests before any
// netlink message is built. Every parse error is INVALID_ARGUMENT and names the field
// and the offending text:
//
//   ASSIGN_OR_RETURN(IpAddress gw, ParseIp(route.gateway(), "route gateway"));
//   ASSIGN_OR_RETURN(int len, ParseMask("255.255.255.0", AF_INET, "mask"));   // 24
//   ASSIGN_OR_RETURN(IpPrefix dst, ParseCidr("10.0.2.0/24", "route dest"));
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace kata::net {

struct IpAddress {
  int family = AF_INET;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};

  size_t size() const { return family == AF_INET ? 4 : 16; }
  int max_prefix() const { return family == AF_INET ? 32 : 128; }
  bool IsZero() const;
  bool IsV6LinkLocal() const;  // fe80::/10
  bool operator==(const IpAddress& o) const = default;
};

struct IpPrefix {
  IpAddress addr;
  int len = 0;
  bool operator==(const IpPrefix& o) const = default;
};

using Mac = std::array<uint8_t, 6>;

// "10.0.2.15", "fd00::1". No brackets, no zone.
StatusOr<IpAddress> ParseIp(std::string_view text, std::string_view what);
std::string FormatIp(const IpAddress& a);  // inet_ntop's canonical form

// A prefix length ("24", "64") or, for IPv4, a contiguous dotted netmask ("255.255.255.0").
StatusOr<int> ParseMask(std::string_view mask, int family, std::string_view what);

// "10.0.2.0/24", or an address alone (the full length: /32 or /128).
StatusOr<IpPrefix> ParseCidr(std::string_view text, std::string_view what);
std::string FormatCidr(const IpPrefix& p);  // "10.0.2.0/24"

// The prefix with its host bits cleared, and whether any were set.
IpPrefix Masked(const IpPrefix& p);
bool HasHostBits(const IpPrefix& p);

// The IPv4 broadcast address of a prefix (host bits all ones).
IpAddress Broadcast(const IpPrefix& p);

// "52:54:00:12:34:56" (case-insensitive; '-' also accepted as separator).
StatusOr<Mac> ParseMac(std::string_view text, std::string_view what);
// Lower-case colon-separated hex of any length ("" for none), as `ip link` prints.
std::string FormatHw(const uint8_t* bytes, size_t n);

}  // namespace kata::net
