#include "runtime/caps.h"

#include <cap-ng.h>
#include <pwd.h>
#include <sys/prctl.h>

#include <cstdio>

#include "runtime/errors.h"

namespace kata {
namespace {

// Indexed by capability number (linux/capability.h).
constexpr const char* kCapNames[kLastKnownCap + 1] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

uint64_t Bit(int cap) { return uint64_t{1} << cap; }

// The kernel knows cap when PR_CAPBSET_READ accepts it (EINVAL past cap_last_cap).
bool KernelHas(int cap) { return prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; }

// The known capabilities of mask the kernel has; the others are named in *warnings.
uint64_t Supported(uint64_t mask, const char* set, std::vector<std::string>* warnings) {
  uint64_t out = 0;
  for (int cap = 0; cap <= kLastKnownCap; cap++) {
    if (!(mask & Bit(cap))) continue;
    if (KernelHas(cap)) {
      out |= Bit(cap);
    } else if (warnings) {
      warnings->push_back(
          StrCat(set, ": ", kCapNames[cap], " is not supported by this kernel; left out"));
    }
  }
  return out;
}

// libcap-ng adds to its own state only: nothing is applied until capng_apply.
void AddAll(uint64_t mask, capng_type_t type) {
  for (int cap = 0; cap <= kLastKnownCap; cap++) {
    if (mask & Bit(cap)) capng_update(CAPNG_ADD, type, static_cast<unsigned>(cap));
  }
}

}  // namespace

std::optional<int> CapFromName(std::string_view name) {
  for (int i = 0; i <= kLastKnownCap; i++) {
    if (name == kCapNames[i]) return i;
  }
  return std::nullopt;
}

const char* CapName(int cap) { return cap >= 0 && cap <= kLastKnownCap ? kCapNames[cap] : nullptr; }

std::string CapMaskHex(uint64_t mask) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(mask));
  return buf;
}

Status DropBoundingSet(const CapSets& caps, std::vector<std::string>* warnings) {
  uint64_t keep = Supported(caps.bounding, "bounding", warnings);
  // State for this process (pid 0: ourselves; a copy inherited over fork would name the
  // parent).
  capng_setpid(0);
  capng_clear(CAPNG_SELECT_BOUNDS);
  AddAll(keep, CAPNG_BOUNDING_SET);
  int rc = capng_apply(CAPNG_SELECT_BOUNDS);
  if (rc == -4) return SysError(EPERM, "drop from the bounding set (no CAP_SETPCAP)");
  if (rc < 0)
    return SysError(errno ? errno : EPERM, "drop from the bounding set (libcap-ng ", rc, ")");
  return absl::OkStatus();
}

Status ApplyCapabilities(const CapSets& caps, std::vector<std::string>* warnings) {
  uint64_t eff = Supported(caps.effective, "effective", warnings);
  uint64_t prm = Supported(caps.permitted, "permitted", warnings);
  uint64_t inh = Supported(caps.inheritable, "inheritable", warnings);
  uint64_t amb = Supported(caps.ambient, "ambient", warnings);
  uint64_t amb_ok = amb & prm & inh;
  for (int cap = 0; cap <= kLastKnownCap; cap++) {
    if ((amb & Bit(cap)) && !(amb_ok & Bit(cap)) && warnings) {
      warnings->push_back(
          StrCat("ambient: ", kCapNames[cap], " is not both permitted and inheritable; left out"));
    }
  }
  capng_setpid(0);
  capng_clear(static_cast<capng_select_t>(CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT));
  AddAll(eff, CAPNG_EFFECTIVE);
  AddAll(prm, CAPNG_PERMITTED);
  AddAll(inh, CAPNG_INHERITABLE);
  AddAll(amb_ok, CAPNG_AMBIENT);
  int rc = capng_apply(CAPNG_SELECT_CAPS);
  if (rc < 0) {
    return SysError(errno ? errno : EPERM, "capset (effective ", CapMaskHex(eff), ", permitted ",
                    CapMaskHex(prm), ", inheritable ", CapMaskHex(inh), ")");
  }
  rc = capng_apply(CAPNG_SELECT_AMBIENT);
  if (rc < 0) {
    return SysError(errno ? errno : EPERM, "raise the ambient capabilities ", CapMaskHex(amb_ok));
  }
  return absl::OkStatus();
}

}  // namespace kata

// The static agent links with --wrap=getpwuid --wrap=initgroups: libcap-ng's
// capng_change_id (never called: it would resolve the user through NSS) lands here, and
// glibc's NSS user functions stay out of the binary.
extern "C" struct passwd* __wrap_getpwuid(uid_t) {
  errno = ENOSYS;
  return nullptr;
}

extern "C" int __wrap_initgroups(const char*, gid_t) {
  errno = ENOSYS;
  return -1;
}
