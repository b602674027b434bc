// Capabilities of a container process: the five sets of process.capabilities, applied with
// libcap-ng in the set-up process.
//
//   ASSIGN_OR_RETURN(int cap, CapFromName("CAP_NET_ADMIN"));   // pure; unknown: NOT_FOUND
//   RETURN_IF_ERROR(DropBoundingSet(caps, &warnings));         // as root, before the
//   ...                                                        // mount namespace is left
//   RETURN_IF_ERROR(SetIds(process, /*keep_caps=*/true));      // runtime/user.h
//   RETURN_IF_ERROR(ApplyCapabilities(caps, &warnings));       // effective, permitted,
//                                                              // inheritable, ambient
//
// Order, as runc and crun do it: the bounding set is dropped while the process still has
// CAP_SETPCAP; the identity changes with PR_SET_KEEPCAPS so the permitted set survives
// the uid change; then capset(2) sets effective, permitted and inheritable, and ambient
// capabilities are raised last (each needs to be permitted and inheritable already).
//
// The bounding set is dropped by the first set-up process, before the container's mount
// namespace is entered: libcap-ng reads /proc/<tid>/status around the drop, and there
// /proc is still the agent's own procfs, where <tid> is this process (in the container a
// rootfs without a proc mount could put anything at that path).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata {

// The highest capability number this build knows a name for (CAP_CHECKPOINT_RESTORE).
inline constexpr int kLastKnownCap = 40;

// "CAP_CHOWN" -> 0 ... "CAP_CHECKPOINT_RESTORE" -> 40, exactly as OCI spells them. Pure.
std::optional<int> CapFromName(std::string_view name);
// 0 -> "CAP_CHOWN"; nullptr past kLastKnownCap.
const char* CapName(int cap);

struct CapSets {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};

// The "CapXxx:" hex value of /proc/PID/status for a set ("00000000a80425fb"). Pure.
std::string CapMaskHex(uint64_t mask);

// Drops every capability not in caps.bounding from the bounding set (needs CAP_SETPCAP).
// Capabilities this kernel does not have are left out, each with a warning.
Status DropBoundingSet(const CapSets& caps, std::vector<std::string>* warnings);

// Sets effective, permitted and inheritable to exactly the requested sets, then the
// ambient set. An ambient capability that is not both permitted and inheritable cannot
// be raised: it is left out with a warning (as crun does).
Status ApplyCapabilities(const CapSets& caps, std::vector<std::string>* warnings);

}  // namespace kata
