// The guest's cgroup tree, set up once by the agent when it runs as PID 1:
//
//   /sys/fs/cgroup            every controller enabled for its children
//   ├── agent                 the agent and everything it starts outside containers
//   │                         (memory.min for its own needs; its oom_score_adj is -1000)
//   └── sandbox               the parent of every container's cgroup, with memory.max =
//       └── <cgroupsPath>...  MemTotal - reserve (re-computed on memory hot-plug)
//
// Why: the Kata runtime often sends no memory limit at all, and a guest-wide OOM that kills
// or starves the agent kills the VM. With the containers under one limit below the guest's
// memory, their OOM is a cgroup OOM inside "sandbox", never the kernel's global one, and
// the agent (never an OOM victim) keeps the memory it needs.
//
// cgroup v2 lets processes live only in leaves (the root aside), so the agent itself
// moves into the "agent" leaf; children it starts (the set-up process, the debug console)
// start there too, and a container's set-up process moves into the container's cgroup
// before it does anything.
//
//   ASSIGN_OR_RETURN(auto guest, GuestCgroups::SetUp({.memory_reserve = 0}));
//   guest->WatchMemoryHotplug();
//   ContainerCgroup::Create(guest->containers_parent(), "c1");
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "util/status.h"

namespace kata {

class GuestCgroups {
 public:
  struct Options {
    uint64_t memory_reserve = 0;  // bytes kept out of the containers' reach; 0: the default
  };

  // Enables the controllers, moves the calling process into <root>/agent, creates
  // <root>/sandbox and sets its memory.max.
  static StatusOr<std::unique_ptr<GuestCgroups>> SetUp(const Options& o);

  const std::string& containers_parent() const { return containers_; }
  const std::string& agent_cgroup() const { return agent_; }

  // Re-reads MemTotal and writes the containers' memory.max.
  Status UpdateContainersMemoryMax();
  uint64_t containers_memory_max() const { return memory_max_.load(); }

  // A thread that listens to the kernel's uevents and calls UpdateContainersMemoryMax when
  // memory blocks go online or offline.
  Status WatchMemoryHotplug();

 private:
  GuestCgroups() = default;
  void HotplugLoop(int fd);

  std::string agent_, containers_;
  Options opts_;
  std::mutex mu_;  // serializes UpdateContainersMemoryMax
  std::atomic<uint64_t> memory_max_{0};
};

}  // namespace kata
