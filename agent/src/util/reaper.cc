#include "util/reaper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "util/log.h"
#include "util/unique_fd.h"

extern char** environ;

namespace kata {

void BlockSignalsEarly() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  // Termination signals are taken synchronously by WaitForTermination(); blocked here so
  // that no other thread gets them with the default (fatal) action.
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

struct Reaper::Impl {
  std::mutex mu;
  std::unordered_map<pid_t, ExitFn> watchers;
  struct Kept {
    int status;
    std::chrono::steady_clock::time_point when;
  };
  std::map<pid_t, Kept> kept;
  uint64_t orphans = 0;
  UniqueFd sigfd;
  std::thread thread;
};

Reaper& Reaper::Get() {
  static Reaper* r = new Reaper();
  return *r;
}

Status Reaper::Start(bool as_subreaper) {
  if (impl_) return absl::OkStatus();
  auto* impl = new Impl();
  if (as_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    return ErrnoError(errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  impl->sigfd.reset(signalfd(-1, &set, SFD_CLOEXEC));
  if (!impl->sigfd) return ErrnoError(errno, "signalfd(SIGCHLD)");
  impl_ = impl;
  impl_->thread = std::thread([this] { Loop(); });
  impl_->thread.detach();
  return absl::OkStatus();
}

void Reaper::Loop() {
  constexpr auto kKeepFor = std::chrono::seconds(60);
  constexpr size_t kKeepMax = 4096;
  for (;;) {
    struct signalfd_siginfo si;
    ssize_t n = read(impl_->sigfd.get(), &si, sizeof si);
    if (n < 0 && errno != EINTR) {
      log::Critical("reaper: reading the signalfd failed").Kv("error", ErrnoText(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
      if (pid <= 0) break;
      ExitFn fn;
      {
        std::lock_guard<std::mutex> lk(impl_->mu);
        auto it = impl_->watchers.find(pid);
        if (it != impl_->watchers.end()) {
          fn = std::move(it->second);
          impl_->watchers.erase(it);
        } else {
          auto now = std::chrono::steady_clock::now();
          for (auto k = impl_->kept.begin(); k != impl_->kept.end();) {
            if (now - k->second.when > kKeepFor || impl_->kept.size() >= kKeepMax) {
              k = impl_->kept.erase(k);
            } else {
              ++k;
            }
          }
          impl_->kept[pid] = Impl::Kept{status, now};
          impl_->orphans++;
        }
      }
      if (fn) fn(status);
    }
  }
}

StatusOr<pid_t> Reaper::Spawn(const std::function<StatusOr<pid_t>()>& start, ExitFn on_exit) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  StatusOr<pid_t> pid = start();
  if (!pid.ok()) return pid;
  impl_->kept.erase(*pid);  // a stale status of an earlier process with this pid
  impl_->watchers[*pid] = std::move(on_exit);
  return pid;
}

void Reaper::Watch(pid_t pid, ExitFn on_exit) {
  int status = 0;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    auto k = impl_->kept.find(pid);
    if (k == impl_->kept.end()) {
      impl_->watchers[pid] = std::move(on_exit);
      return;
    }
    status = k->second.status;
    impl_->kept.erase(k);
    impl_->orphans--;
  }
  on_exit(status);
}

uint64_t Reaper::orphans_reaped() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->orphans;
}

std::string DescribeWaitStatus(int ws) {
  if (WIFEXITED(ws)) return StrCat("exited ", WEXITSTATUS(ws));
  if (WIFSIGNALED(ws)) {
    const char* name = sigabbrev_np(WTERMSIG(ws));
    return StrCat("killed by ", name ? StrCat("SIG", name) : StrCat("signal ", WTERMSIG(ws)));
  }
  return StrCat("wait status ", ws);
}

int ExitCodeOf(int ws) {
  if (WIFEXITED(ws)) return WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
  return 255;
}

StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv, const std::string& input,
                                   size_t max_output, int timeout_ms) {
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: empty argv");
  return RunCommand(CommandSpec{argv[0], argv, std::nullopt, input, max_output, timeout_ms});
}

StatusOr<CommandResult> RunCommand(const CommandSpec& spec) {
  const std::vector<std::string>& argv = spec.argv;
  const std::string& input = spec.input;
  const size_t max_output = spec.max_output;
  const int timeout_ms = spec.timeout_ms;
  if (argv.empty() || spec.path.empty())
    return absl::InvalidArgumentError("RunCommand: empty argv");
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) < 0) return ErrnoError(errno, "pipe2");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(out, O_CLOEXEC) < 0) return ErrnoError(errno, "pipe2");
  UniqueFd out_r(out[0]), out_w(out[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  if (spec.env) {
    for (const auto& e : *spec.env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
  }

  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int status = 0;
  };
  auto done = std::make_shared<Done>();
  StatusOr<pid_t> pid = Reaper::Get().Spawn(
      [&]() -> StatusOr<pid_t> {
        pid_t p;
        int err = posix_spawn(&p, spec.path.c_str(), &fa, &attr, cargv.data(),
                              spec.env ? cenv.data() : environ);
        if (err != 0) return ErrnoError(err, "spawn ", spec.path);
        return p;
      },
      [done](int st) {
        std::lock_guard<std::mutex> lk(done->mu);
        done->done = true;
        done->status = st;
        done->cv.notify_all();
      });
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (!pid.ok()) return pid.status();
  in_r.reset();
  out_w.reset();

  if (!input.empty()) {
    size_t off = 0;
    while (off < input.size()) {
      ssize_t w = write(in_w.get(), input.data() + off, input.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
  }
  in_w.reset();

  CommandResult res;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(*pid, SIGKILL);
      res.timed_out = true;
      break;
    }
    struct pollfd p = {out_r.get(), POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(out_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (res.output.size() < max_output) {
      res.output.append(buf, std::min(static_cast<size_t>(n), max_output - res.output.size()));
    }
  }
  std::unique_lock<std::mutex> lk(done->mu);
  if (!done->cv.wait_until(lk, deadline + std::chrono::seconds(5), [&] { return done->done; })) {
    kill(*pid, SIGKILL);
    res.timed_out = true;
    done->cv.wait(lk, [&] { return done->done; });
  }
  res.wait_status = done->status;
  return res;
}

}  // namespace kata
