#include "sandbox/container.h"

#include <signal.h>

#include "runtime/cgroups.h"
#include "runtime/namespaces.h"
#include "runtime/signals.h"
#include "runtime/stdio.h"
#include "sandbox/oom_watcher.h"
#include "util/log.h"
#include "util/reaper.h"

namespace kata {
namespace {

// ctx.Wait, for at most `most` (zero: no limit of its own). *timed_out tells a wait
// that ran out its own time from one that ended with the call.
template <typename Pred>
Status WaitFor(CallContext& ctx, std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
               Pred pred, std::chrono::seconds most, bool* timed_out) {
  *timed_out = false;
  const auto orig = ctx.deadline();
  const auto limit =
      most.count() > 0 ? CallContext::Clock::now() + most : CallContext::Clock::time_point::max();
  const bool limited = limit < orig;
  if (limited) ctx.set_deadline(limit);
  Status st = ctx.Wait(lk, cv, pred);
  if (limited) ctx.set_deadline(orig);
  if (limited && st.code() == absl::StatusCode::kDeadlineExceeded && ctx.Alive().ok())
    *timed_out = true;
  return st;
}

}  // namespace

const char* Container::StateName(State s) {
  switch (s) {
    case State::kCreating:
      return "creating";
    case State::kCreated:
      return "created";
    case State::kRunning:
      return "running";
    case State::kStopped:
      return "stopped";
    case State::kRemoving:
      return "removing";
  }
  return "?";
}

Container::State Container::state() const {
  std::lock_guard<std::mutex> lk(mu_);
  return state_;
}

pid_t Container::init_pid() const { return init_ ? init_->pid() : 0; }

Status Container::Create(CallContext& ctx, CreateParams p) {
  bundle_dir_ = p.bundle_dir;
  // The container's cgroup (validated even where no cgroups are managed), made before
  // anything runs; its resources are applied once the init is ready.
  ASSIGN_OR_RETURN(ContainerCgroupSpec cgspec, ParseContainerCgroupSpec(p.spec, p.parsed, id_));
  ASSIGN_OR_RETURN(StdioPipes pipes, MakeStdioPipes(p.pipe_size));
  std::shared_ptr<ContainerCgroup> cg;
  if (!p.cgroup_parent.empty()) {
    ASSIGN_OR_RETURN(cg, ContainerCgroup::Create(p.cgroup_parent, cgspec.relative_path));
  }
  init_ = std::make_shared<Process>(p.init_exec_id.empty() ? id_ : p.init_exec_id, /*init=*/true);

  InitLaunch l;
  l.container_id = id_;
  l.spec = &p.spec;
  l.parsed = &p.parsed;
  l.stdin_fd = pipes.stdin_child.get();
  l.stdout_fd = pipes.stdout_child.get();
  l.stderr_fd = pipes.stderr_child.get();
  l.log_level = p.log_level;
  l.before_config = [&](pid_t pid) -> Status {
    return cg ? Annotate(cg->AddProcess(pid, cgspec.oom_score_adj), "cgroup") : absl::OkStatus();
  };
  l.on_ready = [&]() -> Status {
    return cg ? Annotate(cg->Apply(cgspec.resources, cgspec.device_rules), "cgroup")
              : absl::OkStatus();
  };
  // The reaper thread calls this; it holds the container alive until then.
  l.on_init_exit = [self = shared_from_this()](int st) { self->OnInitExit(st); };

  StatusOr<InitHandle> h = LaunchContainerInit(ctx, l);
  pipes.stdin_child.reset();
  pipes.stdout_child.reset();
  pipes.stderr_child.reset();
  if (!h.ok()) {
    if (cg) (void)cg->Destroy();
    return h.status();
  }
  if (cg && p.oom_watcher) {
    if (Status st = p.oom_watcher->Watch(id_, cg->path() + "/memory.events"); !st.ok())
      log::Warn("no OOM events for the container").Kv("container", id_).Kv("error", st.ToString());
  }

  init_->SetPid(h->pid, std::move(h->pidfd));
  if (h->console) {
    if (Status st = init_->SetTerminal(std::move(h->console)); !st.ok()) {
      (void)init_->Signal(SIGKILL);
      if (cg) (void)cg->Destroy();
      return st;
    }
  } else {
    init_->SetStdio(std::move(pipes.stdin_agent), std::move(pipes.stdout_agent),
                    std::move(pipes.stderr_agent));
  }
  exec_base_.namespaces = ExecJoinFlags(p.parsed);
  if (p.spec.has_linux() && p.spec.linux().has_seccomp())
    exec_base_.seccomp = p.spec.linux().seccomp();
  exec_base_.oom_score_adj = cgspec.oom_score_adj;
  exec_base_.pipe_size = p.pipe_size;
  exec_base_.log_level = p.log_level;
  std::lock_guard<std::mutex> lk(mu_);
  cgroup_ = std::move(cg);
  oom_watcher_ = p.oom_watcher;
  handle_ = std::move(*h);
  state_ = init_->exited() ? State::kStopped : State::kCreated;
  cv_.notify_all();
  log::Info("container created").Kv("container", id_).Kv("pid", static_cast<int64_t>(init_->pid()));
  return absl::OkStatus();
}

void Container::OnInitExit(int wait_status) {
  std::lock_guard<std::mutex> lk(mu_);
  init_->SetExited(wait_status);
  if (state_ == State::kCreated || state_ == State::kRunning) state_ = State::kStopped;
  log::Info("container init exited")
      .Kv("container", id_)
      .Kv("pid", static_cast<int64_t>(init_->pid()))
      .Kv("status", DescribeWaitStatus(wait_status));
  cv_.notify_all();
}

Status Container::Start(CallContext& ctx) {
  InitHandle h;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (state_ != State::kCreated || starting_) {
      std::string why = starting_ ? "being started" : StateName(state_);
      if (state_ == State::kStopped)
        why += StrCat(" (its init ", DescribeWaitStatus(init_->wait_status()), ")");
      return absl::FailedPreconditionError(StrCat("container ", id_, " is ", why));
    }
    starting_ = true;
    h.sync = std::move(handle_.sync);
  }
  Status st = StartContainerInit(ctx, h);
  std::lock_guard<std::mutex> lk(mu_);
  starting_ = false;
  if (st.ok()) {
    if (state_ == State::kCreated) state_ = init_->exited() ? State::kStopped : State::kRunning;
    log::Info("container started").Kv("container", id_);
  } else {
    // Whatever the init did, it will not run the process: end it (stopped on its exit).
    (void)init_->Signal(SIGKILL);
  }
  cv_.notify_all();
  return st;
}

StatusOr<std::shared_ptr<Process>> Container::FindProcess(const std::string& exec_id) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (state_ == State::kCreating) {
    return absl::FailedPreconditionError(StrCat("container ", id_, " is being created"));
  }
  if (exec_id.empty() || exec_id == init_->exec_id()) return init_;
  auto it = execs_.find(exec_id);
  if (it == execs_.end()) {
    return absl::NotFoundError(StrCat("process ", exec_id, " not found in container ", id_));
  }
  return it->second;
}

StatusOr<int> Container::Wait(CallContext& ctx, const std::string& exec_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(exec_id));
  std::unique_lock<std::mutex> lk(mu_);
  RETURN_IF_ERROR(ctx.Wait(lk, cv_, [&] { return p->exited(); }));
  if (!p->init()) {
    p->waited = true;
    ReleaseIfDone(p);
  }
  return ExitCodeOf(p->wait_status());
}

Status Container::KillAll(int sig) {
  std::vector<std::shared_ptr<Process>> procs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (init_) procs.push_back(init_);
    for (auto& [id, p] : execs_) procs.push_back(p);
  }
  // The init is pid 1 of the container's own pid namespace unless it joined the
  // sandbox's: killing it kills everything in the namespace. cgroup.kill reaches the
  // rest (processes that left for the sandbox's pid namespace, or escaped the init).
  Status first = absl::OkStatus();
  if (std::shared_ptr<ContainerCgroup> cg = Cgroup(); cg && sig == SIGKILL) first = cg->Kill();
  for (auto& p : procs) {
    Status st = p->Signal(sig);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

Status Container::Signal(const std::string& exec_id, int sig) {
  if (sig <= 0 || sig > 64)
    return absl::InvalidArgumentError(StrCat("signal ", sig, " is not a signal number"));
  if (exec_id.empty() && sig == SIGKILL) {
    RETURN_IF_ERROR(FindProcess("").status());
    return KillAll(SIGKILL);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Process> p, FindProcess(exec_id));
  if (p->init() && sig == SIGTERM && !p->exited() && !SignalHandled(p->pid(), SIGTERM)) {
    log::Debug("the container's init does not handle SIGTERM: sending SIGKILL")
        .Kv("container", id_);
    sig = SIGKILL;
  }
  return p->Signal(sig);
}

bool Container::AllExited() const {
  if (init_ && !init_->exited()) return false;
  for (const auto& [id, p] : execs_) {
    if (!p->exited()) return false;
  }
  return true;
}

Status Container::Remove(CallContext& ctx, std::chrono::seconds timeout) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (state_ == State::kCreating) {
      return absl::FailedPreconditionError(StrCat("container ", id_, " is being created"));
    }
    state_ = State::kRemoving;
  }
  RETURN_IF_ERROR(KillAll(SIGKILL));
  std::unique_lock<std::mutex> lk(mu_);
  bool timed_out = false;
  Status st = WaitFor(
      ctx, lk, cv_, [&] { return AllExited(); }, timeout, &timed_out);
  if (timed_out) {
    return absl::DeadlineExceededError(StrCat("container ", id_, ": processes still running ",
                                              timeout.count(), " s after SIGKILL"));
  }
  RETURN_IF_ERROR(st);
  handle_.sync.reset();
  if (init_) init_->CloseStdio();
  for (auto& [id, p] : execs_) p->CloseStdio();
  std::shared_ptr<ContainerCgroup> cg = std::move(cgroup_);
  lk.unlock();
  if (cg) {
    if (oom_watcher_) oom_watcher_->Unwatch(id_);
    if (Status d = cg->Destroy(); !d.ok())
      log::Warn("container cgroup not removed").Kv("container", id_).Kv("error", d.ToString());
  }
  // Its mounts lived in its own mount namespace, which went away with its last process.
  log::Info("container removed").Kv("container", id_);
  return absl::OkStatus();
}

std::shared_ptr<ContainerCgroup> Container::Cgroup(bool* paused) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (paused) *paused = paused_;
  return cgroup_;
}

Status Container::Pause(CallContext& ctx) { return SetFrozen(ctx, true); }
Status Container::Resume(CallContext& ctx) { return SetFrozen(ctx, false); }

Status Container::SetFrozen(CallContext& ctx, bool frozen) {
  std::shared_ptr<ContainerCgroup> cg;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!cgroup_) {
      return absl::FailedPreconditionError(
          StrCat("container ", id_, ": the agent manages no cgroups here (not a cgroup v2 guest)"));
    }
    if (state_ != State::kCreated && state_ != State::kRunning) {
      return absl::FailedPreconditionError(StrCat("container ", id_, " is ", StateName(state_)));
    }
    if (freezing_) {
      return absl::FailedPreconditionError(
          StrCat("container ", id_, " is being paused or resumed"));
    }
    if (paused_ == frozen) {
      return absl::FailedPreconditionError(
          StrCat("container ", id_, frozen ? " is already paused" : " is not paused"));
    }
    freezing_ = true;
    cg = cgroup_;
  }
  Status st = cg->Freeze(ctx, frozen);
  std::lock_guard<std::mutex> lk(mu_);
  freezing_ = false;
  if (st.ok()) paused_ = frozen;
  cv_.notify_all();
  if (st.ok()) log::Info(frozen ? "container paused" : "container resumed").Kv("container", id_);
  return st;
}

Status Container::Update(const CgroupResources& r) {
  std::shared_ptr<ContainerCgroup> cg;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (state_ == State::kCreating || state_ == State::kRemoving)
      return absl::FailedPreconditionError(StrCat("container ", id_, " is ", StateName(state_)));
    cg = cgroup_;
  }
  if (!cg) {
    return absl::FailedPreconditionError(
        StrCat("container ", id_, ": the agent manages no cgroups here (not a cgroup v2 guest)"));
  }
  return cg->Update(r);
}

Status Container::Stats(grpc::CgroupStats* out) {
  std::shared_ptr<ContainerCgroup> cg;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (state_ == State::kCreating)
      return absl::FailedPreconditionError(StrCat("container ", id_, " is being created"));
    cg = cgroup_;
  }
  if (!cg) return absl::OkStatus();  // no cgroup of its own: nothing to report
  return cg->Stats(out);
}

}  // namespace kata
