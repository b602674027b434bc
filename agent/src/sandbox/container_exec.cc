// ExecProcess: more processes in a running container, and when they are forgotten.
#include <signal.h>

#include "runtime/launcher.h"
#include "runtime/stdio.h"
#include "sandbox/container.h"
#include "util/log.h"
#include "util/reaper.h"

namespace kata {

Status Container::Exec(CallContext& ctx, ExecParams ep) {
  ProcessSpec parsed;
  RETURN_IF_ERROR(ParseProcessSpec(ep.process, &parsed));
  const std::string& eid = ep.exec_id;
  auto proc = std::make_shared<Process>(eid, /*init=*/false);
  std::shared_ptr<ContainerCgroup> cg;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (state_ != State::kCreated && state_ != State::kRunning) {
      return absl::FailedPreconditionError(StrCat("container ", id_, " is ", StateName(state_)));
    }
    if (init_->exited()) {
      return absl::FailedPreconditionError(StrCat("container ", id_, ": its init has exited"));
    }
    if (eid == init_->exec_id() || execs_.count(eid) || execs_starting_.count(eid)) {
      return absl::AlreadyExistsError(
          StrCat("process ", eid, " already exists in container ", id_));
    }
    execs_starting_.insert(eid);
    cg = cgroup_;
  }
  ASSIGN_OR_RETURN(StdioPipes pipes, MakeStdioPipes(exec_base_.pipe_size));
  // An exec without an oom_score_adj of its own gets the container's, as its init did.
  int oom = ep.process.oomscoreadj() ? static_cast<int>(ep.process.oomscoreadj())
                                     : exec_base_.oom_score_adj;
  ep.process.set_oomscoreadj(oom);

  ExecLaunch l;
  l.container_id = id_;
  l.exec_id = eid;
  l.init_pidfd = init_->pidfd();
  l.namespaces = exec_base_.namespaces;
  l.process = &ep.process;
  l.names = ep.names;
  l.seccomp = exec_base_.seccomp ? &*exec_base_.seccomp : nullptr;
  l.stdin_fd = pipes.stdin_child.get();
  l.stdout_fd = pipes.stdout_child.get();
  l.stderr_fd = pipes.stderr_child.get();
  l.log_level = exec_base_.log_level;
  l.before_config = [&](pid_t pid) -> Status {
    return cg ? Annotate(cg->AddProcess(pid, oom), "cgroup") : absl::OkStatus();
  };
  l.on_exit = [self = shared_from_this(), proc](int st) { self->OnExecExit(proc, st); };
  StatusOr<ExecHandle> h = LaunchExecProcess(ctx, l);
  pipes.stdin_child.reset();
  pipes.stdout_child.reset();
  pipes.stderr_child.reset();

  Status st = h.status();
  if (h.ok()) {
    proc->SetPid(h->pid, std::move(h->pidfd));
    if (h->console) {
      st = proc->SetTerminal(std::move(h->console));
    } else {
      proc->SetStdio(std::move(pipes.stdin_agent), std::move(pipes.stdout_agent),
                     std::move(pipes.stderr_agent));
    }
    if (!st.ok()) (void)proc->Signal(SIGKILL);
  }
  std::lock_guard<std::mutex> lk(mu_);
  execs_starting_.erase(eid);
  if (!h.ok()) return st;
  // Kept even when its terminal failed: it is reaped and waited like any exec.
  execs_[eid] = proc;
  // A removal that began meanwhile did not see it.
  if (state_ == State::kRemoving) (void)proc->Signal(SIGKILL);
  cv_.notify_all();
  if (st.ok()) {
    log::Info("exec started")
        .Kv("container", id_)
        .Kv("exec", eid)
        .Kv("pid", static_cast<int64_t>(proc->pid()));
  }
  return st;
}

void Container::OnExecExit(const std::shared_ptr<Process>& p, int wait_status) {
  std::lock_guard<std::mutex> lk(mu_);
  p->SetExited(wait_status);
  log::Debug("exec exited")
      .Kv("container", id_)
      .Kv("exec", p->exec_id())
      .Kv("status", DescribeWaitStatus(wait_status));
  cv_.notify_all();
}

bool Container::ReleaseIfDone(const std::shared_ptr<Process>& p) {
  if (p->init() || !p->waited || !p->OutputsDrained()) return false;
  auto it = execs_.find(p->exec_id());
  if (it == execs_.end() || it->second != p) return false;
  execs_.erase(it);
  p->CloseStdio();
  return true;
}

void Container::MaybeRelease(const std::shared_ptr<Process>& p) {
  std::lock_guard<std::mutex> lk(mu_);
  ReleaseIfDone(p);
}

}  // namespace kata
