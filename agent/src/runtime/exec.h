// The last step of set-up: find the container's executable, then exec it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/spec.h"
#include "util/status.h"

namespace kata {

inline constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The value of PATH in env ("KEY=value" entries), or kDefaultPath. Pure.
std::string PathFromEnv(const std::vector<std::string>& env);

// args[0] as execvp would find it: as given when it contains a '/', else the first
// executable regular file named so in the PATH of the process's environment. Run in the
// container (after pivot_root, chdir and the identity change), so the lookup sees what
// the process will see. ENOENT/EACCES when there is none.
StatusOr<std::string> FindExecutable(const ProcessSpec& p);

// What execve(2) accepts (fs/exec.c): each argument and environment string at most
// MAX_ARG_STRLEN (32 pages, its NUL included); all strings and their pointers together at
// most a quarter of the stack limit (RLIMIT_STACK's soft value), never above 6 MiB and
// never below 128 KiB.
// Checked when the spec is, so an environment exec would refuse is INVALID_ARGUMENT at
// CreateContainer rather than a failure at StartContainer. Pure.
inline constexpr uint64_t kDefaultStackLimit = 8u << 20;
Status CheckExecArgs(const std::vector<std::string>& args, const std::vector<std::string>& env,
                     uint64_t stack_limit = kDefaultStackLimit);

// execve(path, args, env). Returns only on failure.
Status Exec(const std::string& path, const ProcessSpec& p);

}  // namespace kata
