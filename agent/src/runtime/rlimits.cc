#include "runtime/rlimits.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/errors.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

struct Named {
  const char* name;
  int resource;
};

constexpr Named kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

}  // namespace

std::optional<int> RlimitFromName(std::string_view name) {
  for (const auto& r : kRlimits) {
    if (name == r.name) return r.resource;
  }
  return std::nullopt;
}

Status ApplyRlimits(const std::vector<RlimitSpec>& limits) {
  for (const RlimitSpec& l : limits) {
    struct rlimit rl;
    rl.rlim_cur = l.soft;
    rl.rlim_max = l.hard;
    if (setrlimit(static_cast<__rlimit_resource>(l.resource), &rl) < 0) {
      return SysError(errno, "setrlimit ", l.name, " soft ", l.soft, " hard ", l.hard);
    }
  }
  return absl::OkStatus();
}

Status SetOomScoreAdj(int value) {
  UniqueFd fd(open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
  if (!fd) return SysError(errno, "open /proc/self/oom_score_adj");
  std::string text = std::to_string(value);
  if (write(fd.get(), text.data(), text.size()) < 0) {
    return SysError(errno, "write ", text, " to /proc/self/oom_score_adj");
  }
  return absl::OkStatus();
}

}  // namespace kata
