#include "network/iptables.h"

#include <unistd.h>

#include "util/reaper.h"

namespace kata::net {
namespace {

// Rules come back in one response, which both transports cap at 4 MiB.
constexpr size_t kMaxOutput = 4 << 20;
constexpr int kTimeoutMs = 30000;
// iptables-restore waits this long for the xtables lock (upstream's value).
constexpr char kRestoreWaitS[] = "5";

}  // namespace

StatusOr<std::string> FindIptablesTool(bool ipv6, bool restore) {
  const std::string tool = StrCat(ipv6 ? "ip6tables" : "iptables", restore ? "-restore" : "-save");
  for (const char* dir : {"/usr/sbin/", "/sbin/"}) {
    std::string p = StrCat(dir, tool);
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::FailedPreconditionError(StrCat(
      tool, " is not in the guest image (looked for /usr/sbin/", tool, " and /sbin/", tool, ")"));
}

StatusOr<std::string> SaveIptables(bool ipv6) {
  ASSIGN_OR_RETURN(std::string tool, FindIptablesTool(ipv6, /*restore=*/false));
  ASSIGN_OR_RETURN(CommandResult r, RunCommand({tool}, {}, kMaxOutput, kTimeoutMs));
  if (r.wait_status != 0) {
    return absl::InternalError(
        StrCat(tool, " ", DescribeWaitStatus(r.wait_status), ": ", r.output));
  }
  if (r.output.size() >= kMaxOutput) {
    return absl::ResourceExhaustedError(StrCat(tool, ": the rules exceed ", kMaxOutput, " bytes"));
  }
  return std::move(r.output);
}

StatusOr<std::string> RestoreIptables(bool ipv6, const std::string& rules) {
  ASSIGN_OR_RETURN(std::string tool, FindIptablesTool(ipv6, /*restore=*/true));
  ASSIGN_OR_RETURN(CommandResult r,
                   RunCommand({tool, "--wait", kRestoreWaitS}, rules, kMaxOutput, kTimeoutMs));
  if (r.wait_status != 0) {
    return absl::InternalError(
        StrCat(tool, " ", DescribeWaitStatus(r.wait_status), ": ", r.output));
  }
  return std::move(r.output);
}

}  // namespace kata::net
