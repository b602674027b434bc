// Where a container's processes are placed in the cgroup tree.
//
// Only a pure cgroup v2 hierarchy at /sys/fs/cgroup (the guest) is ever written. On any
// other host (a v1 or hybrid layout, such as the machines the host test tier runs on)
// placement is skipped and said so at debug level: the host's cgroups are never touched.
#pragma once

#include <sys/types.h>

#include <string>

#include "runtime/spec.h"
#include "util/status.h"

namespace kata {

// statfs("/sys/fs/cgroup") is cgroup2 (CGROUP2_SUPER_MAGIC).
bool PureCgroup2();

// Called with the set-up process's pid before it forks the container's init, so that
// everything of the container starts inside its cgroup.
Status PlaceInContainerCgroup(pid_t pid, const std::string& container_id,
                              const ContainerSpec& spec);

}  // namespace kata
