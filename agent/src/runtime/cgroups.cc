#include "runtime/cgroups.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include "util/log.h"

namespace kata {

bool PureCgroup2() {
  struct statfs fs;
  return statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

Status PlaceInContainerCgroup(pid_t pid, const std::string& container_id,
                              const ContainerSpec& /*spec*/) {
  if (!PureCgroup2()) {
    log::Debug("cgroups: /sys/fs/cgroup is not a pure cgroup2 mount; container not placed")
        .Kv("container", container_id)
        .Kv("pid", static_cast<int64_t>(pid));
    return absl::OkStatus();
  }
  // Resource control (the container's own cgroup under the sandbox's) is not done yet:
  // the container shares the agent's cgroup.
  log::Debug("cgroups: container stays in the agent's cgroup").Kv("container", container_id);
  return absl::OkStatus();
}

}  // namespace kata
