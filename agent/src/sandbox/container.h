// One container: its state machine, its init process (and, later, its execs).
//
//   creating --Create ok--> created --Start--> running --init exits--> stopped
//       |                      |                                          |
//       +--Create fails: gone  +--init exits (killed before start)--------+
//   any state but creating --Remove--> removing --all exited--> gone (the sandbox drops it)
//
// Locking: see sandbox.h. All members marked "mu_" are guarded by mu_; cv_ is notified on
// every process exit and state change.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "agent.pb.h"
#include "oci.pb.h"
#include "rpc/call_context.h"
#include "runtime/cgroups.h"
#include "runtime/launcher.h"
#include "runtime/spec.h"
#include "sandbox/process.h"
#include "util/status.h"

namespace kata {

class OomWatcher;

class Container : public std::enable_shared_from_this<Container> {
 public:
  enum class State { kCreating, kCreated, kRunning, kStopped, kRemoving };

  struct CreateParams {
    grpc::Spec spec;         // rewritten for the set-up process (RewriteSpecForInit)
    ContainerSpec parsed;    // the same, parsed
    std::string bundle_dir;  // <bundle base>/<id>
    // The exec id the runtime uses for the init (upstream: the container id); an empty
    // exec id names the init too.
    std::string init_exec_id;
    uint32_t pipe_size = 0;
    int log_level = 0;
    // The containers' parent cgroup; empty: cgroups are not managed (not the guest).
    std::string cgroup_parent;
    OomWatcher* oom_watcher = nullptr;  // told about the container's memory.events
  };

  explicit Container(std::string id) : id_(std::move(id)) {}

  const std::string& id() const { return id_; }

  // Sets the container up (everything but the exec of its process). On failure nothing
  // is left running and the caller drops the container.
  Status Create(CallContext& ctx, CreateParams p);
  // Execs the container's process.
  Status Start(CallContext& ctx);

  // ExecProcess (sandbox/container_exec.cc): one more process in the container's
  // namespaces and cgroup, with its own process spec. exec_id unique in the container
  // (ALREADY_EXISTS); the container must be created or running with its init alive.
  struct ExecParams {
    std::string exec_id;
    grpc::Process process;
    std::optional<UserNames> names;  // StringUser
  };
  Status Exec(CallContext& ctx, ExecParams p);
  // Forgets an exec that was waited for and whose outputs were read to their end
  // (WaitProcess and ReadStdout/ReadStderr call it); the init is never released.
  void MaybeRelease(const std::shared_ptr<Process>& p);
  // The process's exit code (128 + signal when killed), waiting for the exit.
  StatusOr<int> Wait(CallContext& ctx, const std::string& exec_id);
  // A signal to a process; SIGKILL with an empty exec_id reaches every process of the
  // container. SIGTERM to an init that neither handles, ignores nor blocks it becomes
  // SIGKILL (the kernel drops it otherwise: an init is only signalled by what it handles).
  Status Signal(const std::string& exec_id, int sig);
  // Kills every process, waits up to timeout (zero: for ever, within the call's
  // deadline) for them to exit, then releases the container's resources. A timeout leaves
  // the container in "removing"; Remove may be called again.
  Status Remove(CallContext& ctx, std::chrono::seconds timeout);

  // cgroup v2 (FAILED_PRECONDITION when the agent manages no cgroups). Pause freezes the
  // container's cgroup and returns once the kernel says it is frozen; Resume thaws it.
  Status Pause(CallContext& ctx);
  Status Resume(CallContext& ctx);
  // UpdateContainer: all of it or nothing (see ContainerCgroup::Update).
  Status Update(const CgroupResources& r);
  Status Stats(grpc::CgroupStats* out);

  // The process for exec_id (empty or the init's exec id: the init). NOT_FOUND if none.
  StatusOr<std::shared_ptr<Process>> FindProcess(const std::string& exec_id) const;

  State state() const;
  pid_t init_pid() const;
  static const char* StateName(State s);

 private:
  void OnInitExit(int wait_status);
  void OnExecExit(const std::shared_ptr<Process>& p, int wait_status);
  bool ReleaseIfDone(const std::shared_ptr<Process>& p);  // mu_ held
  Status KillAll(int sig);
  bool AllExited() const;  // mu_ held

  const std::string id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kCreating;                         // mu_
  std::shared_ptr<Process> init_;                          // set during Create, then constant
  std::map<std::string, std::shared_ptr<Process>> execs_;  // mu_
  std::set<std::string> execs_starting_;                   // mu_: ids being launched
  // What every exec of the container shares; set in Create, then constant.
  struct ExecBase {
    int namespaces = 0;  // CLONE_NEW* to join
    std::optional<grpc::LinuxSeccomp> seccomp;
    int oom_score_adj = 0;
    uint32_t pipe_size = 0;
    int log_level = 0;
  } exec_base_;
  InitHandle handle_;                       // mu_; its socket until Start
  bool starting_ = false;                   // mu_
  bool paused_ = false, freezing_ = false;  // mu_
  std::string bundle_dir_;
  // mu_: the container's cgroup (cgroups managed only), from Create until Remove. Callers
  // take a reference under mu_ and use it without the lock.
  std::shared_ptr<ContainerCgroup> cgroup_;
  OomWatcher* oom_watcher_ = nullptr;  // set in Create, then constant
  std::shared_ptr<ContainerCgroup> Cgroup(bool* paused = nullptr) const;
  Status SetFrozen(CallContext& ctx, bool frozen);
};

}  // namespace kata
