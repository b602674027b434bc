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
  bool setup_exited = false, init_exited = false;
  int setup_status = 0, init_status = 0;
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

void Relay(const std::string& id, const kata::init::LogLine& l) {
  auto level = static_cast<log::Level>(
      std::min<uint32_t>(l.level(), static_cast<uint32_t>(log::Level::kCritical)));
  log::Line(level, "container set-up").Kv("container", id).Kv("detail", l.text());
}

Status FailureStatus(const kata::init::Failure& f) {
  auto code = static_cast<absl::StatusCode>(f.code());
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
  Status st(code, StrCat(f.step(), ": ", f.message()));
  if (f.errno_value()) st.SetPayload(kErrnoPayloadUrl, absl::Cord(std::to_string(f.errno_value())));
  return st;
}

StatusOr<pid_t> SpawnSetupProcess(int in, int out, int err, int sync, UniqueFd* pidfd,
                                  const std::shared_ptr<Exits>& exits) {
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
        // Still unreaped: the reaper cannot hand its exit to anyone before Spawn returns,
        // and it has not waited for it unless it already died (then this fails).
        pidfd->reset(static_cast<int>(syscall(SYS_pidfd_open, p, 0)));
        return p;
      },
      [exits](int st) {
        std::lock_guard<std::mutex> lk(exits->mu);
        exits->setup_exited = true;
        exits->setup_status = st;
        exits->cv.notify_all();
      });
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return pid;
}

}  // namespace

StatusOr<InitHandle> LaunchContainerInit(CallContext& ctx, const InitLaunch& l) {
  if (SelfImage::Fd() < 0)
    return absl::FailedPreconditionError("the agent's sealed self image is missing");
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
    return SysError(errno, "socketpair");
  UniqueFd agent_end(sp[0]), child_end(sp[1]);
  if (fcntl(agent_end.get(), F_SETFL, O_NONBLOCK) < 0) return SysError(errno, "O_NONBLOCK");
  ASSIGN_OR_RETURN(UniqueFd c0, DupHigh(l.stdin_fd));
  ASSIGN_OR_RETURN(UniqueFd c1, DupHigh(l.stdout_fd));
  ASSIGN_OR_RETURN(UniqueFd c2, DupHigh(l.stderr_fd));
  ASSIGN_OR_RETURN(UniqueFd c3, DupHigh(child_end.get()));
  child_end.reset();

  auto exits = std::make_shared<Exits>();
  UniqueFd setup_pidfd;
  ASSIGN_OR_RETURN(pid_t setup_pid,
                   SpawnSetupProcess(c0.get(), c1.get(), c2.get(), c3.get(), &setup_pidfd, exits));
  c0.reset();
  c1.reset();
  c2.reset();
  c3.reset();

  InitHandle h;
  // On any failure: kill what was started and wait until both are reaped, so the caller
  // never leaves a zombie or a half-made container behind.
  auto fail = [&](Status st) -> Status {
    if (setup_pidfd) (void)SendSignal(setup_pidfd.get(), SIGKILL, "the set-up process");
    if (h.pidfd) (void)SendSignal(h.pidfd.get(), SIGKILL, "the container's init");
    agent_end.reset();
    std::unique_lock<std::mutex> lk(exits->mu);
    exits->cv.wait_for(lk, std::chrono::seconds(10),
                       [&] { return exits->setup_exited && (h.pid == 0 || exits->init_exited); });
    return st;
  };
  if (!setup_pidfd) return fail(SysError(ESRCH, "pidfd_open of the set-up process"));

  if (l.before_config) {
    if (Status st = l.before_config(setup_pid); !st.ok()) return fail(st);
  }
  InitMessage cfg;
  cfg.mutable_config()->set_container_id(l.container_id);
  *cfg.mutable_config()->mutable_spec() = *l.spec;
  cfg.mutable_config()->set_log_level(static_cast<uint32_t>(l.log_level));
  if (Status st = SendInitMessage(agent_end.get(), cfg); !st.ok()) return fail(st);

  FrameReader rd;
  for (;;) {
    InitMessage m;
    UniqueFd fd;
    StatusOr<bool> got = rd.Next(&m, &fd);
    if (!got.ok()) return fail(got.status());
    if (!*got) {
      StatusOr<FrameReader::Fill> more = rd.FillFrom(agent_end.get());
      if (!more.ok()) return fail(more.status());
      if (*more == FrameReader::Fill::kData) continue;
      if (*more == FrameReader::Fill::kEnd) {
        // End of stream without Ready: the set-up process died. Say how.
        std::unique_lock<std::mutex> lk(exits->mu);
        exits->cv.wait_for(lk, std::chrono::seconds(2), [&] { return exits->setup_exited; });
        std::string how =
            exits->setup_exited ? DescribeWaitStatus(exits->setup_status) : "still running";
        lk.unlock();
        return fail(absl::InternalError(
            StrCat("the set-up process ended before the container was ready (", how, ")")));
      }
      if (Status st = ctx.WaitFd(agent_end.get(), POLLIN); !st.ok()) return fail(st);
      continue;
    }
    switch (m.msg_case()) {
      case InitMessage::kIdmapRequest: {
        Status st = WriteIdMaps(setup_pid, *l.parsed);
        if (!st.ok()) return fail(Annotate(st, "user namespace"));
        InitMessage done;
        done.mutable_idmap_done();
        if (Status s2 = SendInitMessage(agent_end.get(), done); !s2.ok()) return fail(s2);
        break;
      }
      case InitMessage::kPid: {
        if (!fd || m.pid().pid() <= 0)
          return fail(absl::InternalError("the set-up process sent a pid without a pidfd"));
        h.pid = m.pid().pid();
        h.pidfd = std::move(fd);
        Reaper::Get().Watch(h.pid, [exits, cb = l.on_init_exit](int st) {
          {
            std::lock_guard<std::mutex> lk(exits->mu);
            exits->init_exited = true;
            exits->init_status = st;
            exits->cv.notify_all();
          }
          if (cb) cb(st);
        });
        break;
      }
      case InitMessage::kLog:
        Relay(l.container_id, m.log());
        break;
      case InitMessage::kFailure:
        return fail(FailureStatus(m.failure()));
      case InitMessage::kReady:
        if (!h.pidfd)
          return fail(absl::InternalError("the set-up process was ready before sending a pid"));
        if (l.on_ready) {
          if (Status st = l.on_ready(); !st.ok()) return fail(st);
        }
        h.sync = std::move(agent_end);
        return h;
      default:
        return fail(absl::InternalError(StrCat("unexpected message from the set-up process (",
                                               static_cast<int>(m.msg_case()), ")")));
    }
  }
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
