// Device access rules and the BPF_PROG_TYPE_CGROUP_DEVICE program that enforces them.
//
// cgroup v2 has no devices.allow/deny files: the kernel runs the programs attached to a
// cgroup (and its ancestors) on every mknod and open of a device node, with
// struct bpf_cgroup_dev_ctx {access_type = access << 16 | type, major, minor}, and refuses
// with EPERM when one returns 0.
//
//   std::vector<DeviceRule> rules = spec_rules ? *spec_rules : DefaultDeviceRules(spec.devices);
//   std::vector<struct bpf_insn> prog = CompileDeviceFilter(rules);   // pure
//   ... load and attach: runtime/device_cgroup.h
//
// Semantics (runc's, as its rules emulate cgroup v1): rules apply in order and the last
// one that matches decides; what no rule allows is denied. Each access (mknod, read,
// write) is decided on its own: a request for read+write is allowed only if, for both,
// the last rule that names that access and matches the device allows it. So
// "allow c 1:3 rwm" then "deny c 1:3 w" leaves reading /dev/null allowed and opening it
// for writing denied.
//
// The program walks the rules from the last to the first keeping the accesses still
// undecided in r3: an allow rule that matches clears its accesses (all cleared: allow),
// a deny rule that matches any undecided access denies. A rule matching every device
// and access ends the walk: the rules before it cannot matter.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/spec.h"
#include "util/status.h"

namespace kata {

inline constexpr uint32_t kDevAccessMknod = BPF_DEVCG_ACC_MKNOD;  // 1
inline constexpr uint32_t kDevAccessRead = BPF_DEVCG_ACC_READ;    // 2
inline constexpr uint32_t kDevAccessWrite = BPF_DEVCG_ACC_WRITE;  // 4
inline constexpr uint32_t kDevAccessAll = kDevAccessMknod | kDevAccessRead | kDevAccessWrite;

struct DeviceRule {
  bool allow = false;
  char type = 'a';     // 'a' (any), 'b', 'c'
  int64_t major = -1;  // -1: any
  int64_t minor = -1;  // -1: any
  uint32_t access = kDevAccessAll;

  bool operator==(const DeviceRule&) const = default;
};

// "rwm" -> bits; INVALID_ARGUMENT for any other letter. Empty means all (as runc).
StatusOr<uint32_t> ParseDeviceAccess(std::string_view access);
// "allow c 1:3 rwm", "deny a *:* rwm": for logs and test messages.
std::string DeviceRuleText(const DeviceRule& r);

// The rules when the spec gives none (the Kata runtime strips them): mknod of any node,
// and read/write/mknod of null, zero, full, random, urandom, tty, console, ptmx, the pts
// devices, fuse, and each device the spec itself creates in the container. Everything
// else (the guest's disks, another container's devices) is denied.
std::vector<DeviceRule> DefaultDeviceRules(const std::vector<DeviceSpec>& spec_devices);

// The program, ending in exit. At most kMaxDeviceRules rules (INVALID_ARGUMENT past it:
// jump offsets are 16-bit and the verifier has a size limit).
inline constexpr size_t kMaxDeviceRules = 2048;
StatusOr<std::vector<struct bpf_insn>> CompileDeviceFilter(const std::vector<DeviceRule>& rules);

// What the rules decide for one request, evaluated directly (the reference the compiled
// program is tested against). type: 'b' or 'c'.
bool DeviceAllowed(const std::vector<DeviceRule>& rules, char type, uint32_t major, uint32_t minor,
                   uint32_t access);

}  // namespace kata
