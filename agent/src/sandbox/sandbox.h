// The agent's state: the sandbox (the pod the VM runs) and its containers.
//
// Lock discipline (the whole agent state follows it):
//  1. Sandbox::mu_ guards the container map and the sandbox's own fields. It is held only
//     to look up, insert or erase, never across a blocking call and never while taking
//     any other lock: callers take a shared_ptr<Container> and let go of mu_.
//  2. Container::mu_ guards one container's state and the exit fields of its processes;
//     its cv_ is notified on every exit and state change. Never held across a blocking
//     system call, a wait for the set-up process, or a call into the reaper.
//  3. Stream::mu_ (a process's stdio) is a leaf: it guards the stream's pending bytes
//     and fd holder and nothing is taken under it.
//  4. The reaper's lock is innermost and never held while its callbacks run. A callback
//     (a process exit) takes Container::mu_. So nobody calls Reaper::Spawn or
//     Reaper::Watch with Container::mu_ held (Watch may run the callback at once).
// Long operations on one container (set-up, start, removal) hold no lock while they
// wait; its state field (creating, created, running, stopped, removing) keeps
// conflicting calls out.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent.pb.h"
#include "init/config.h"
#include "rpc/call_context.h"
#include "runtime/guest_cgroups.h"
#include "sandbox/container.h"
#include "sandbox/oom_watcher.h"
#include "sandbox/pod.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

class Sandbox {
 public:
  explicit Sandbox(const AgentConfig& cfg) : cfg_(cfg) {}
  // At agent start: the sealed self image every container set-up runs from.
  Status Init();
  const AgentConfig& config() const { return cfg_; }
  // As PID 1 on a cgroup v2 guest, before serving: the guest's cgroup tree
  // (runtime/guest_cgroups) and the producer of OOM events. Without it containers get no
  // cgroup of their own.
  Status EnableCgroups(uint64_t memory_reserve, OomEvents* oom_events);

  // CreateSandbox: hostname (containers with their own uts namespace and no hostname of
  // their own get it) and sandbox_id. A second call before DestroySandbox is
  // ALREADY_EXISTS.
  Status CreateSandbox(const std::string& hostname, const std::string& sandbox_id);
  // Undoes CreateSandbox's record after a failed set-up.
  void ForgetSandbox();
  // Stops every container: SIGTERM to each, up to term_grace for all of them to exit,
  // then SIGKILL and each removed (waited for up to kill_grace) with its poststop hooks;
  // then forgets the sandbox. The caller releases storages, syncs and, as PID 1, powers off.
  Status DestroySandbox(CallContext& ctx, std::chrono::seconds term_grace,
                        std::chrono::seconds kill_grace);
  // What CreateSandbox set up for the pod (namespaces, hooks, dns).
  Pod& pod() { return pod_; }

  // CreateContainer with a spec that ParseSpec accepted. exec_id: what the runtime will
  // call the init process (empty: the container id, as upstream). sandbox_pidns: join the
  // pid namespace of the sandbox's first container (a new one if this is the first).
  // names: StringUser, resolved in the container (replaces the spec's numeric user).
  Status CreateContainer(CallContext& ctx, const std::string& id, const std::string& exec_id,
                         const grpc::Spec& spec, bool sandbox_pidns,
                         const std::optional<UserNames>& names = std::nullopt);
  // StartContainer with the hooks around it: startContainer before the exec, poststart
  // after (logged only).
  Status StartContainer(CallContext& ctx, const std::string& id);
  // RemoveContainer, then its poststop hooks (logged only).
  Status RemoveContainer(CallContext& ctx, const std::string& id, std::chrono::seconds timeout);
  // NOT_FOUND for an unknown id.
  StatusOr<std::shared_ptr<Container>> Get(const std::string& id) const;
  // SIGKILL to every container's processes, waiting for nothing: for an agent that is
  // stopping (not PID 1), so its containers do not outlive it.
  void KillAllContainers();

  size_t container_count() const;

 private:
  const AgentConfig& cfg_;
  // Set by EnableCgroups before serving, then constant.
  std::unique_ptr<GuestCgroups> guest_cgroups_;
  std::unique_ptr<OomWatcher> oom_watcher_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Container>> containers_;  // mu_
  bool created_ = false;                                          // mu_
  std::string hostname_, sandbox_id_;                             // mu_
  // The pid namespace of the sandbox's first container, kept open so later containers
  // can join it (as /proc/<agent>/fd/N) even after its path would have gone.
  UniqueFd pidns_;           // mu_
  std::string pidns_owner_;  // mu_: the container whose pid namespace it is
  Pod pod_;
  // The hooks of each container (the spec's and the guest's, as they were when it was
  // created) and its state for them.
  struct ContainerHooks {
    GuestHooks hooks;
    HookState state;
  };
  std::map<std::string, ContainerHooks> hooks_;  // mu_
  // Runs the container's hooks of one type with its state (status, pid).
  Status RunContainerHooks(const std::string& id, std::vector<Hook> GuestHooks::*which,
                           const char* kind, const char* status, int pid);
};

}  // namespace kata
