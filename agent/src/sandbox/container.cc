#include "sandbox/container.h"

#include <signal.h>

#include "runtime/cgroups.h"
#include "runtime/signals.h"
#include "runtime/stdio.h"
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
  if (p.parsed.process.terminal) {
    return absl::UnimplementedError("process.terminal: terminals are not supported yet");
  }
  ASSIGN_OR_RETURN(StdioPipes pipes, MakeStdioPipes(p.pipe_size));
  init_ = std::make_shared<Process>(p.init_exec_id.empty() ? id_ : p.init_exec_id, /*init=*/true);

  InitLaunch l;
  l.container_id = id_;
  l.spec = &p.spec;
  l.parsed = &p.parsed;
  l.stdin_fd = pipes.stdin_child.get();
  l.stdout_fd = pipes.stdout_child.get();
  l.stderr_fd = pipes.stderr_child.get();
  l.log_level = p.log_level;
  const ContainerSpec& parsed = p.parsed;
  l.before_config = [this, &parsed](pid_t pid) { return PlaceInContainerCgroup(pid, id_, parsed); };
  // The reaper thread calls this; it holds the container alive until then.
  l.on_init_exit = [self = shared_from_this()](int st) { self->OnInitExit(st); };

  StatusOr<InitHandle> h = LaunchContainerInit(ctx, l);
  pipes.stdin_child.reset();
  pipes.stdout_child.reset();
  pipes.stderr_child.reset();
  if (!h.ok()) return h.status();

  init_->SetPid(h->pid, std::move(h->pidfd));
  init_->SetStdio(std::move(pipes.stdin_agent), std::move(pipes.stdout_agent),
                  std::move(pipes.stderr_agent));
  std::lock_guard<std::mutex> lk(mu_);
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
  // sandbox's: killing it kills everything in the namespace. (Cgroup-wide kill comes
  // with cgroups.)
  Status first = absl::OkStatus();
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
  // Its mounts lived in its own mount namespace, which went away with its last process.
  log::Info("container removed").Kv("container", id_);
  return absl::OkStatus();
}

}  // namespace kata
