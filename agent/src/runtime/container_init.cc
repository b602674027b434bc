// "kata-agent init": the container set-up process.
//
// Started by the agent (runtime/launcher) from its sealed self image, single-threaded,
// with stdio = the container's pipes and fd 3 = the socketpair to the agent. Runs as two
// processes:
//   setup (P1): read the config; join namespaces; create the user namespace (the agent
//               writes the id maps) and then the others; fork the container's init into
//               them; send its pid and a pidfd; exit.
//   init (P2):  the checklist below, one step per line; Ready; wait for Start; exec.
// The process's own settings (limits, identity, capabilities, no_new_privs, seccomp)
// are applied in crun's order: rlimits and oom_score_adj in P1 before any namespace is
// entered (raising a hard limit needs the initial user namespace), the bounding set in
// P1 once the user namespace is entered, the rest in P2 after the rootfs is in place.
// A failed step sends {step, errno, message} to the agent and exits 1. Nothing here may
// leak into the container: fds 4 and up are closed first, fd 3 is close-on-exec, the
// process is not dumpable (no ptrace, no /proc/PID/fd of it from the container) until
// the exec, and the signal mask is empty since the spawn.
#include "runtime/container_init.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>

#include "runtime/caps.h"
#include "runtime/console.h"
#include "runtime/devices.h"
#include "runtime/errors.h"
#include "runtime/exec.h"
#include "runtime/init_protocol.h"
#include "runtime/namespaces.h"
#include "runtime/path.h"
#include "runtime/rlimits.h"
#include "runtime/rootfs.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "runtime/sysctl.h"
#include "runtime/user.h"
#include "util/log.h"

namespace kata {
namespace {

using kata::init::InitMessage;

constexpr int kSyncFd = 3;
log::Level g_level = log::Level::kInfo;

void Send(const InitMessage& m, int fd = -1) {
  Status st = SendInitMessage(kSyncFd, m, fd);
  if (!st.ok()) _exit(1);  // the agent is gone: nobody to set up for
}

void Log(log::Level level, std::string_view text) {
  if (level < g_level) return;
  InitMessage m;
  m.mutable_log()->set_level(static_cast<uint32_t>(level));
  m.mutable_log()->set_text(std::string(text));
  Send(m);
}

void Warn(const std::vector<std::string>& warnings) {
  for (const std::string& w : warnings) Log(log::Level::kWarn, w);
}

[[noreturn]] void Fail(const char* step, const Status& st) {
  InitMessage m;
  kata::init::Failure* f = m.mutable_failure();
  f->set_step(step);
  f->set_code(static_cast<int>(st.code()));
  f->set_errno_value(ErrnoOf(st));
  f->set_message(std::string(st.message()));
  (void)SendInitMessage(kSyncFd, m);
  _exit(1);
}

// One step of the checklist: run it, or report it by name and stop.
// Debug lines say how long each step took: "mounts 0.712 ms".
void StepDone(const char* name) {
  static struct timespec last = {0, 0};
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (last.tv_sec != 0 || last.tv_nsec != 0) {
    double ms = static_cast<double>(now.tv_sec - last.tv_sec) * 1e3 +
                static_cast<double>(now.tv_nsec - last.tv_nsec) / 1e6;
    char text[96];
    snprintf(text, sizeof text, "%s %.3f ms", name, ms);
    Log(log::Level::kDebug, text);
  }
  last = now;
}

void Step(const char* name, const Status& st) {
  if (!st.ok()) Fail(name, st);
  StepDone(name);
}

template <typename T>
T Step(const char* name, StatusOr<T> v) {
  if (!v.ok()) Fail(name, v.status());
  StepDone(name);
  return std::move(*v);
}

UserNames UserNamesFrom(const kata::init::UserNames& m) {
  UserNames n;
  n.user = m.user();
  n.group = m.group();
  n.additional.assign(m.additional_groups().begin(), m.additional_groups().end());
  return n;
}

Status Errno(int r, const char* what) { return r < 0 ? SysError(errno, what) : absl::OkStatus(); }

// Every signal to its default action. posix_spawn resets the ones it may, but glibc
// leaves its two internal signals (32, 33) ignored in the child, and an ignored signal
// stays ignored across exec: the container's process would inherit that. glibc's
// sigaction() refuses those two, hence the raw system call.
void ResetSignalDispositions() {
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } dfl = {SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// A credential change sets dumpable to fs.suid_dumpable, which may be 1: say it again.
void KeepNotDumpable() { prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

// oom_score_adj is inherited: written only when it differs (lowering it needs
// CAP_SYS_RESOURCE, which the container need not be given to keep what it has).
Status SetOomScoreAdjIfDifferent(int value) {
  char buf[16] = {0};
  UniqueFd fd(open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC));
  if (fd && read(fd.get(), buf, sizeof buf - 1) > 0 && atoi(buf) == value) return absl::OkStatus();
  return SetOomScoreAdj(value);
}

// What the set-up carries from P1 to P2 about the process, besides its spec.
struct ProcessPlan {
  std::optional<SeccompProgram> seccomp;
};

// P1, before any namespace is entered: limits (inherited over fork and exec), and the
// seccomp program compiled here (libseccomp only ever runs in this process).
ProcessPlan PrepareProcess(const ProcessSpec& p, const std::optional<SeccompSpec>& seccomp) {
  if (!p.apparmor_profile.empty()) {
    Log(log::Level::kWarn,
        "process.apparmorProfile: AppArmor is not supported in this guest; ignored");
  }
  if (!p.selinux_label.empty()) {
    Log(log::Level::kWarn, "process.selinuxLabel: SELinux is not supported in this guest; ignored");
  }
  Step("rlimits", ApplyRlimits(p.rlimits));
  Step("oom_score_adj", SetOomScoreAdjIfDifferent(p.oom_score_adj));
  ProcessPlan plan;
  if (seccomp) {
    std::vector<std::string> warnings;
    plan.seccomp = Step("seccomp", CompileSeccomp(*seccomp, &warnings));
    Warn(warnings);
  }
  return plan;
}

// P1, in the process's user namespace (entering one resets the bounding set to full).
void DropBounding(const ProcessSpec& p) {
  if (!p.capabilities) return;
  std::vector<std::string> warnings;
  Step("capabilities", DropBoundingSet(*p.capabilities, &warnings));
  Warn(warnings);
}

// P2, in the container's root: the process's terminal (process.terminal), made in the
// container's devpts, its master sent to the agent. After ResolveUser: the slave is
// chowned to the process's user.
void SetUpTerminal(const ProcessSpec& p) {
  if (!p.terminal) return;
  Pty pty = Step("terminal", OpenPtyInContainer());
  InitMessage m;
  m.mutable_console();
  Send(m, pty.master.get());
  pty.master.reset();
  Step("terminal", BecomeControllingTerminal(std::move(pty.slave), p.console_size, p.uid, p.gid));
}

// P2, in the container's root: who the process is, what it may do, and its executable.
// Without no_new_privs the filter goes in first, while CAP_SYS_ADMIN is still held.
std::string BecomeProcess(ProcessSpec& p, const ProcessPlan& plan) {
  Step("user", ResolveUser(&p));
  SetUpTerminal(p);
  if (plan.seccomp && !p.no_new_privileges) Step("seccomp", LoadSeccomp(*plan.seccomp));
  Step("user", SetIds(p, /*keep_caps=*/p.capabilities.has_value()));
  KeepNotDumpable();
  if (p.capabilities) {
    std::vector<std::string> warnings;
    Step("capabilities", ApplyCapabilities(*p.capabilities, &warnings));
    Warn(warnings);
  }
  if (p.no_new_privileges) {
    Step("no_new_privs", Errno(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS"));
  }
  return Step("exec", FindExecutable(p));
}

// The very last step: with no_new_privs, the filter is loaded right before the exec.
[[noreturn]] void ExecProcess(const std::string& exe, const ProcessSpec& p,
                              const ProcessPlan& plan) {
  umask(022);
  if (plan.seccomp && p.no_new_privileges) Step("seccomp", LoadSeccomp(*plan.seccomp));
  Fail("exec", Exec(exe, p));
}

// P2: speak only once P1 has sent our pid and let go of the socket; if P1 died before
// that, the agent does not know this process: stop.
void WaitForSetup(int p1_done) {
  char c = 0;
  ssize_t n;
  while ((n = read(p1_done, &c, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1) _exit(1);
  close(p1_done);
}

// P1's last step: fork P2 (into the pid namespace entered or created), send its pid with
// a pidfd, let it go on, exit.
template <typename Fn>
[[noreturn]] void ForkChild(const char* what, Fn child_main) {
  int done[2];
  Step("fork", Errno(pipe2(done, O_CLOEXEC), "pipe2"));
  pid_t child = fork();
  if (child < 0) Fail("fork", SysError(errno, "fork ", what));
  if (child == 0) {
    close(done[1]);
    child_main(done[0]);
    _exit(1);
  }
  close(done[0]);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  if (pidfd < 0) {
    kill(child, SIGKILL);
    Fail("fork", SysError(errno, "pidfd_open of ", what));
  }
  InitMessage m;
  m.mutable_pid()->set_pid(child);
  Send(m, pidfd);
  while (write(done[1], "k", 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

// Creates the user namespace, has the agent write its id maps, and becomes its root.
Status CreateUserNamespace(const ContainerSpec& spec) {
  RETURN_IF_ERROR(Unshare(CLONE_NEWUSER));
  InitMessage req;
  req.mutable_idmap_request();
  RETURN_IF_ERROR(SendInitMessage(kSyncFd, req));
  ASSIGN_OR_RETURN(InitMessage reply, RecvInitMessage(kSyncFd));
  if (!reply.has_idmap_done()) return absl::InternalError("the agent did not write the id maps");
  if (IdMapped(spec.gid_mappings, 0) && setresgid(0, 0, 0) < 0)
    return SysError(errno, "setresgid 0");
  if (IdMapped(spec.uid_mappings, 0) && setresuid(0, 0, 0) < 0)
    return SysError(errno, "setresuid 0");
  KeepNotDumpable();
  return absl::OkStatus();
}

// P2: everything inside the container's namespaces, up to the exec.
[[noreturn]] void RunContainerInit(ContainerSpec& spec, const std::vector<PlannedMount>& plan,
                                   const ProcessPlan& pplan, int p1_done) {
  WaitForSetup(p1_done);
  const bool userns = spec.NewNamespace(NsType::kUser);

  Step("setsid", Errno(setsid(), "setsid"));
  UniqueFd root = Step("rootfs", PrepareRootfs(spec));
  Step("mounts", MountAll(root.get(), plan));
  Step("devices", CreateDevices(root.get(), DevicesToCreate(spec), userns));
  Step("devices", CreateDevLinks(root.get()));
  Step("cwd", MkdirAllInRoot(root.get(), spec.process.cwd).status());
  if (!spec.hostname.empty()) Step("hostname", SetHostname(spec.hostname));
  Step("sysctls", WriteSysctls(spec.sysctls));
  Step("pivot_root", PivotRoot(root.get()));
  root.reset();
  Step("rootfs propagation", ApplyRootPropagation(spec));
  Step("readonly paths", ApplyReadonlyPaths(spec.readonly_paths));
  Step("masked paths", ApplyMaskedPaths(spec.masked_paths));
  if (spec.root_readonly) Step("readonly rootfs", MakeRootReadonly());
  Step("cwd", Errno(chdir(spec.process.cwd.c_str()), "chdir to the process cwd"));
  std::string exe = BecomeProcess(spec.process, pplan);

  InitMessage ready;
  ready.mutable_ready();
  Send(ready);
  // Like runc's exec fifo: the container exists, its process starts on StartContainer.
  StatusOr<InitMessage> go = RecvInitMessage(kSyncFd);
  if (!go.ok() || !go->has_start()) _exit(1);  // removed before it was started
  ExecProcess(exe, spec.process, pplan);
}

// P1: namespaces, then the fork of the container's init.
[[noreturn]] void RunSetup(ContainerSpec& spec, const std::vector<PlannedMount>& plan) {
  ProcessPlan pplan = PrepareProcess(spec.process, spec.seccomp);
  std::vector<NsToJoin> join = Step("namespaces", OpenNamespacesToJoin(spec));
  Step("namespaces", JoinNamespaces(join));
  if (spec.NewNamespace(NsType::kUser)) Step("user namespace", CreateUserNamespace(spec));
  DropBounding(spec.process);
  Step("namespaces", Unshare(NewNamespaceFlags(spec, /*with_user=*/false)));

  ForkChild("the container's init",
            [&](int p1_done) { RunContainerInit(spec, plan, pplan, p1_done); });
}

// P2 of an exec: in the container's namespaces already (setns by P1); its own session,
// cwd, terminal and identity, then the exec. Nothing waits for a Start.
[[noreturn]] void RunExecProcess(ProcessSpec& p, const ProcessPlan& pplan, int p1_done) {
  WaitForSetup(p1_done);
  Step("setsid", Errno(setsid(), "setsid"));
  Step("cwd", Errno(chdir(p.cwd.c_str()), "chdir to the process cwd"));
  std::string exe = BecomeProcess(p, pplan);
  ExecProcess(exe, p, pplan);
}

// P1 of an exec: the container's namespaces through the init's pidfd, the user
// namespace first (the bounding set is dropped in it, before the container's /proc is
// the one in sight), then the others in one setns call.
[[noreturn]] void RunExecSetup(const kata::init::ExecConfig& cfg, UniqueFd init_pidfd) {
  if (!init_pidfd) Fail("namespaces", absl::InternalError("no pidfd of the container's init"));
  ProcessSpec p;
  Step("spec", ParseProcessSpec(cfg.process(), &p));
  if (cfg.has_user_names()) p.names = UserNamesFrom(cfg.user_names());
  std::optional<SeccompSpec> seccomp;
  if (cfg.has_seccomp()) seccomp = Step("seccomp", ParseSeccomp(cfg.seccomp()));
  ProcessPlan pplan = PrepareProcess(p, seccomp);
  const int flags = static_cast<int>(cfg.namespaces());
  if (flags & CLONE_NEWUSER) {
    Step("namespaces", Errno(setns(init_pidfd.get(), CLONE_NEWUSER), "setns user"));
    KeepNotDumpable();
  }
  DropBounding(p);
  if (flags & ~CLONE_NEWUSER) {
    Step("namespaces",
         Errno(setns(init_pidfd.get(), flags & ~CLONE_NEWUSER), "setns into the container"));
  }
  init_pidfd.reset();
  ForkChild("the exec's process", [&](int p1_done) { RunExecProcess(p, pplan, p1_done); });
}

}  // namespace

int ContainerInitMain(int /*argc*/, char** /*argv*/) {
  // Not dumpable until exec: nothing in the container can ptrace this process or open
  // its /proc/PID/fd (the agent's socket, the rootfs fds).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ResetSignalDispositions();
  if (fcntl(kSyncFd, F_SETFD, FD_CLOEXEC) < 0) {
    fprintf(stderr,
            "kata-agent init: the agent starts this mode itself (no set-up socket on fd 3)\n");
    return 127;
  }
  // No PR_SET_PDEATHSIG: it follows the spawning thread, and the agent's worker threads
  // come and go. If the agent dies, the socket reaches end of stream and set-up stops.
  // Only stdio and the socket may survive; the spawn already closed the agent's
  // close-on-exec fds, this also closes anything that was not.
  syscall(SYS_close_range, kSyncFd + 1, ~0U, 0);
  umask(0);
  log::SetFd(-1);
  StepDone("start");

  UniqueFd passed;
  StatusOr<InitMessage> m = RecvInitMessage(kSyncFd, &passed);
  if (!m.ok()) return 1;
  if (m->has_exec_config()) {
    g_level = static_cast<log::Level>(m->exec_config().log_level());
    RunExecSetup(m->exec_config(), std::move(passed));
  }
  if (!m->has_config()) return 1;
  const kata::init::InitConfig& cfg = m->config();
  g_level = static_cast<log::Level>(cfg.log_level());
  ContainerSpec spec = Step("spec", ParseSpec(cfg.spec()));
  if (cfg.has_user_names()) spec.process.names = UserNamesFrom(cfg.user_names());
  std::vector<PlannedMount> plan = Step("spec", PlanMounts(spec));
  RunSetup(spec, plan);
}

}  // namespace kata
