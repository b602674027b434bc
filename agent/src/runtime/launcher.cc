#include "runtime/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "runtime/errors.h"
#include "runtime/init_protocol.h"
#include "runtime/namespaces.h"
#include "runtime/self_image.h"
#include "runtime/signals.h"
#include "util/log.h"
#include "util/reaper.h"

namespace kata {
namespace {

using kata::init::InitMessage;

// Exit statuses of the two processes, shared with the reaper's callbacks.
struct Exits {
  std::mutex mu;
  std::condition_variable cv;
  bool setup_exited = false, child_exited = false;
  int setup_status = 0, child_status = 0;
};

// A copy of fd at 10 or above, so the spawn's dup2 onto 0..3 cannot clobber another.
StatusOr<UniqueFd> DupHigh(int fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  if (d < 0) return SysError(errno, "dup");
  return UniqueFd(d);
}

Status WriteProcFile(const std::string& path, const std::string& text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return SysError(errno, "open ", path);
  // The kernel takes a map in a single write(2).
  ssize_t n = write(fd.get(), text.data(), text.size());
  if (n < 0) return SysError(errno, "write ", path);
  if (static_cast<size_t>(n) != text.size()) return SysError(EIO, "write ", path, ": short write");
  return absl::OkStatus();
}

Status WriteIdMaps(pid_t pid, const ContainerSpec& s) {
  RETURN_IF_ERROR(WriteProcFile(StrCat("/proc/", pid, "/uid_map"), IdMapText(s.uid_mappings)));
  RETURN_IF_ERROR(WriteProcFile(StrCat("/proc/", pid, "/gid_map"), IdMapText(s.gid_mappings)));
  return absl::OkStatus();
}

Status FailureStatus(const kata::init::Failure& f) {
  auto code = static_cast<absl::StatusCode>(f.code());
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
  Status st(code, StrCat(f.step(), ": ", f.message()));
  if (f.errno_value()) st.SetPayload(kErrnoPayloadUrl, absl::Cord(std::to_string(f.errno_value())));
  return st;
}

// Sets the message's user_names (absent: left unset).
template <typename Msg>
void SetUserNames(const std::optional<UserNames>& names, Msg* msg) {
  if (!names) return;
  kata::init::UserNames* out = msg->mutable_user_names();
  out->set_user(names->user);
  out->set_group(names->group);
  for (const std::string& g : names->additional) out->add_additional_groups(g);
}

// One set-up process and the conversation with it: spawned from the self image with the
// process's stdio and the socket on fd 3; its child (the container's init, or an exec's
// process) learnt from its Pid message and watched; on failure both killed and reaped
// before the error is returned, so a caller never leaves a zombie or a half-made process.
class SetupRun {
 public:
  SetupRun(std::string container_id, std::string what)
      : id_(std::move(container_id)), what_(std::move(what)) {}

  Status Spawn(int in, int out, int err) {
    if (SelfImage::Fd() < 0)
      return absl::FailedPreconditionError("the agent's sealed self image is missing");
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
      return SysError(errno, "socketpair");
    sock_.reset(sp[0]);
    UniqueFd child_end(sp[1]);
    if (fcntl(sock_.get(), F_SETFL, O_NONBLOCK) < 0) return SysError(errno, "O_NONBLOCK");
    ASSIGN_OR_RETURN(UniqueFd c0, DupHigh(in));
    ASSIGN_OR_RETURN(UniqueFd c1, DupHigh(out));
    ASSIGN_OR_RETURN(UniqueFd c2, DupHigh(err));
    ASSIGN_OR_RETURN(UniqueFd c3, DupHigh(child_end.get()));
    child_end.reset();
    ASSIGN_OR_RETURN(setup_pid_, SpawnProcess(c0.get(), c1.get(), c2.get(), c3.get()));
    if (!setup_pidfd_) return Fail(SysError(ESRCH, "pidfd_open of the set-up process"));
    return absl::OkStatus();
  }

  pid_t setup_pid() const { return setup_pid_; }
  int sock() const { return sock_.get(); }

  Status Send(const InitMessage& m, int fd = -1) { return SendInitMessage(sock_.get(), m, fd); }

  // The next message (false: end of stream), waiting through ctx. Log lines are relayed,
  // a Failure becomes the error, the Pid message registers the child.
  StatusOr<bool> Next(CallContext& ctx, InitMessage* m, UniqueFd* fd,
                      const std::function<void(int)>& on_child_exit) {
    for (;;) {
      StatusOr<bool> got = rd_.Next(m, fd);
      if (!got.ok()) return got.status();
      if (!*got) {
        ASSIGN_OR_RETURN(FrameReader::Fill more, rd_.FillFrom(sock_.get()));
        if (more == FrameReader::Fill::kEnd) return false;
        if (more == FrameReader::Fill::kWouldBlock)
          RETURN_IF_ERROR(ctx.WaitFd(sock_.get(), POLLIN));
        continue;
      }
      if (m->has_log()) {
        Relay(m->log());
        continue;
      }
      if (m->has_failure()) return FailureStatus(m->failure());
      if (m->has_pid()) {
        if (!*fd || m->pid().pid() <= 0)
          return absl::InternalError("the set-up process sent a pid without a pidfd");
        child_pid_ = m->pid().pid();
        child_pidfd_ = std::move(*fd);
        Reaper::Get().Watch(child_pid_, [exits = exits_, on_child_exit](int st) {
          {
            std::lock_guard<std::mutex> lk(exits->mu);
            exits->child_exited = true;
            exits->child_status = st;
            exits->cv.notify_all();
          }
          if (on_child_exit) on_child_exit(st);
        });
      }
      return true;
    }
  }

  // How the set-up process ended, for an end of stream that came too early.
  std::string SetupExit() {
    std::unique_lock<std::mutex> lk(exits_->mu);
    exits_->cv.wait_for(lk, std::chrono::seconds(2), [&] { return exits_->setup_exited; });
    return exits_->setup_exited ? DescribeWaitStatus(exits_->setup_status) : "still running";
  }

  Status Fail(Status st) {
    if (setup_pidfd_) (void)SendSignal(setup_pidfd_.get(), SIGKILL, "the set-up process");
    if (child_pidfd_) (void)SendSignal(child_pidfd_.get(), SIGKILL, what_);
    sock_.reset();
    std::unique_lock<std::mutex> lk(exits_->mu);
    exits_->cv.wait_for(lk, std::chrono::seconds(10), [&] {
      return (setup_pid_ == 0 || exits_->setup_exited) && (child_pid_ == 0 || exits_->child_exited);
    });
    return st;
  }

  pid_t child_pid() const { return child_pid_; }
  UniqueFd TakeChildPidfd() { return std::move(child_pidfd_); }
  UniqueFd TakeSock() { return std::move(sock_); }

 private:
  void Relay(const kata::init::LogLine& l) {
    auto level = static_cast<log::Level>(
        std::min<uint32_t>(l.level(), static_cast<uint32_t>(log::Level::kCritical)));
    log::Line(level, "container set-up").Kv("container", id_).Kv("detail", l.text());
  }

  StatusOr<pid_t> SpawnProcess(int in, int out, int err, int sync) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, err, 2);
    posix_spawn_file_actions_adddup2(&fa, sync, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    std::string path = SelfImage::Path();
    char arg0[] = "kata-agent", arg1[] = "init";
    char* argv[] = {arg0, arg1, nullptr};
    char* envp[] = {nullptr};
    StatusOr<pid_t> pid = Reaper::Get().Spawn(
        [&]() -> StatusOr<pid_t> {
          pid_t p;
          int e = posix_spawn(&p, path.c_str(), &fa, &attr, argv, envp);
          if (e != 0) return SysError(e, "spawn the set-up process (", path, ")");
          // Still unreaped: the reaper cannot hand its exit to anyone before Spawn
          // returns, and it has not waited for it unless it already died (then this fails).
          setup_pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, p, 0)));
          return p;
        },
        [exits = exits_](int st) {
          std::lock_guard<std::mutex> lk(exits->mu);
          exits->setup_exited = true;
          exits->setup_status = st;
          exits->cv.notify_all();
        });
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return pid;
  }

  const std::string id_, what_;
  std::shared_ptr<Exits> exits_ = std::make_shared<Exits>();
  UniqueFd sock_;
  FrameReader rd_;
  pid_t setup_pid_ = 0, child_pid_ = 0;
  UniqueFd setup_pidfd_, child_pidfd_;
};

}  // namespace

StatusOr<InitHandle> LaunchContainerInit(CallContext& ctx, const InitLaunch& l) {
  SetupRun run(l.container_id, "the container's init");
  RETURN_IF_ERROR(run.Spawn(l.stdin_fd, l.stdout_fd, l.stderr_fd));
  if (l.before_config) {
    if (Status st = l.before_config(run.setup_pid()); !st.ok()) return run.Fail(st);
  }
  InitMessage cfg;
  cfg.mutable_config()->set_container_id(l.container_id);
  *cfg.mutable_config()->mutable_spec() = *l.spec;
  cfg.mutable_config()->set_log_level(static_cast<uint32_t>(l.log_level));
  SetUserNames(l.parsed->process.names, cfg.mutable_config());
  if (Status st = run.Send(cfg); !st.ok()) return run.Fail(st);

  InitHandle h;
  for (;;) {
    InitMessage m;
    UniqueFd fd;
    StatusOr<bool> got = run.Next(ctx, &m, &fd, l.on_init_exit);
    if (!got.ok()) return run.Fail(got.status());
    if (!*got) {
      return run.Fail(absl::InternalError(StrCat(
          "the set-up process ended before the container was ready (", run.SetupExit(), ")")));
    }
    switch (m.msg_case()) {
      case InitMessage::kIdmapRequest: {
        Status st = WriteIdMaps(run.setup_pid(), *l.parsed);
        if (!st.ok()) return run.Fail(Annotate(st, "user namespace"));
        InitMessage done;
        done.mutable_idmap_done();
        if (Status s2 = run.Send(done); !s2.ok()) return run.Fail(s2);
        break;
      }
      case InitMessage::kPid:
        break;
      case InitMessage::kConsole:
        if (!fd) return run.Fail(absl::InternalError("the console message came without a pty"));
        h.console = std::move(fd);
        break;
      case InitMessage::kReady:
        if (run.child_pid() == 0)
          return run.Fail(absl::InternalError("the set-up process was ready before sending a pid"));
        if (l.on_ready) {
          if (Status st = l.on_ready(); !st.ok()) return run.Fail(st);
        }
        h.pid = run.child_pid();
        h.pidfd = run.TakeChildPidfd();
        h.sync = run.TakeSock();
        return h;
      default:
        return run.Fail(absl::InternalError(StrCat("unexpected message from the set-up process (",
                                                   static_cast<int>(m.msg_case()), ")")));
    }
  }
}

StatusOr<ExecHandle> LaunchExecProcess(CallContext& ctx, const ExecLaunch& l) {
  SetupRun run(l.container_id, StrCat("exec ", l.exec_id));
  RETURN_IF_ERROR(run.Spawn(l.stdin_fd, l.stdout_fd, l.stderr_fd));
  if (l.before_config) {
    if (Status st = l.before_config(run.setup_pid()); !st.ok()) return run.Fail(st);
  }
  InitMessage cfg;
  kata::init::ExecConfig* e = cfg.mutable_exec_config();
  e->set_container_id(l.container_id);
  e->set_exec_id(l.exec_id);
  *e->mutable_process() = *l.process;
  SetUserNames(l.names, e);
  if (l.seccomp) *e->mutable_seccomp() = *l.seccomp;
  e->set_namespaces(static_cast<uint32_t>(l.namespaces));
  e->set_log_level(static_cast<uint32_t>(l.log_level));
  if (Status st = run.Send(cfg, l.init_pidfd); !st.ok()) return run.Fail(st);

  ExecHandle h;
  for (;;) {
    InitMessage m;
    UniqueFd fd;
    StatusOr<bool> got = run.Next(ctx, &m, &fd, l.on_exit);
    if (!got.ok()) return run.Fail(got.status());
    if (!*got) break;  // the socket is close-on-exec: the process has exec'd
    if (m.has_console()) {
      if (!fd) return run.Fail(absl::InternalError("the console message came without a pty"));
      h.console = std::move(fd);
    } else if (!m.has_pid()) {
      return run.Fail(absl::InternalError(StrCat("unexpected message from the exec set-up (",
                                                 static_cast<int>(m.msg_case()), ")")));
    }
  }
  if (run.child_pid() == 0) {
    return run.Fail(absl::InternalError(StrCat(
        "the exec set-up process ended without starting the process (", run.SetupExit(), ")")));
  }
  h.pid = run.child_pid();
  h.pidfd = run.TakeChildPidfd();
  return h;
}

Status StartContainerInit(CallContext& ctx, InitHandle& h) {
  if (!h.sync) return absl::FailedPreconditionError("the container was already started");
  UniqueFd sync = std::move(h.sync);
  InitMessage start;
  start.mutable_start();
  if (Status st = SendInitMessage(sync.get(), start); !st.ok()) {
    return Status(absl::StatusCode::kFailedPrecondition,
                  StrCat("the container's init is gone: ", st.message()));
  }
  FrameReader rd;
  for (;;) {
    InitMessage m;
    UniqueFd fd;
    StatusOr<bool> got = rd.Next(&m, &fd);
    if (!got.ok()) return got.status();
    if (*got) {
      if (m.has_failure()) return FailureStatus(m.failure());
      if (m.has_log()) continue;
      return absl::InternalError(StrCat("unexpected message from the container's init (",
                                        static_cast<int>(m.msg_case()), ")"));
    }
    StatusOr<FrameReader::Fill> more = rd.FillFrom(sync.get());
    if (!more.ok()) return more.status();
    if (*more == FrameReader::Fill::kEnd) return absl::OkStatus();  // the socket closed on exec
    if (*more == FrameReader::Fill::kWouldBlock) RETURN_IF_ERROR(ctx.WaitFd(sync.get(), POLLIN));
  }
}

}  // namespace kata
