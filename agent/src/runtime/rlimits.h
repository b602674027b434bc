// Resource limits of a container process (process.rlimits), set in the first set-up
// process: limits are inherited over fork and exec, and raising a hard limit needs
// CAP_SYS_RESOURCE in the initial user namespace, which is only held before a user
// namespace is entered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata {

struct RlimitSpec {
  int resource = 0;  // RLIMIT_*
  std::string name;  // "RLIMIT_NOFILE"
  uint64_t soft = 0, hard = 0;
};

// "RLIMIT_NOFILE" -> RLIMIT_NOFILE; the sixteen of setrlimit(2). Pure.
std::optional<int> RlimitFromName(std::string_view name);

// setrlimit for each, in order.
Status ApplyRlimits(const std::vector<RlimitSpec>& limits);

// Writes /proc/self/oom_score_adj (-1000..1000).
Status SetOomScoreAdj(int value);

}  // namespace kata
