// The last step of set-up: find the container's executable, then exec it.
#pragma once

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

// execve(path, args, env). Returns only on failure.
Status Exec(const std::string& path, const ProcessSpec& p);

}  // namespace kata
