#include "init/debug_console.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_split.h"
#include "rpc/address.h"
#include "util/accept.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/reaper.h"
#include "util/unique_fd.h"

namespace kata {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string FindDebugShell(const std::string& root) {
  for (const char* shell : {"/bin/bash", "/bin/sh"}) {
    std::string path = root + shell;
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0) {
      return shell;
    }
  }
  return "";
}

std::vector<std::string> DebugShellEnv(const std::string& shell) {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "HOME=/",
          "TERM=vt100",
          "SHELL=" + shell,
          "USER=root",
          "LOGNAME=root"};
}

std::string ConsoleDevice(const std::string& active_text) {
  std::vector<std::string> words =
      absl::StrSplit(active_text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  if (words.empty() || words.back().find('/') != std::string::npos || words.back()[0] == '.') {
    return "/dev/console";
  }
  return "/dev/" + words.back();
}

milliseconds RespawnBackoff::Next(milliseconds ran_for) {
  if (ran_for >= kHealthyAfter) {
    delay_ = milliseconds(0);
  } else {
    delay_ = delay_.count() == 0 ? kFirst : std::min(delay_ * 2, kMax);
  }
  return delay_;
}

namespace {

// What the child executes, laid out before the fork: the child may not allocate.
struct ShellExec {
  std::string path;
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;

  explicit ShellExec(const std::string& shell)
      : path(shell), args{shell, "-i"}, env(DebugShellEnv(shell)) {
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  ShellExec(const ShellExec&) = delete;
  ShellExec& operator=(const ShellExec&) = delete;
};

// A failed step of the child, sent up the close-on-exec pipe (end of stream: exec done).
struct ChildFailure {
  int step;
  int err;
};
constexpr const char* kChildSteps[] = {"setsid", "TIOCSCTTY", "dup2", "exec"};

// The child of a fork in a multi-threaded process: only async-signal-safe calls from here
// to execve (no malloc, no locks, no logging).
[[noreturn]] void ExecOnTty(const ShellExec& x, int tty, bool steal, int report_fd) {
  auto fail = [report_fd](int step) {
    ChildFailure f{step, errno};
    ssize_t r = write(report_fd, &f, sizeof f);
    (void)r;
    _exit(126);
  };
  // Dispositions back to default (a handler would not survive exec; an ignored signal
  // would), then an empty mask: the agent blocks SIGCHLD and the termination signals.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (setsid() < 0) fail(0);
  // The tty becomes the controlling terminal of the new session. steal: take it even if
  // another session still holds it (the serial console after a shell that left jobs).
  if (ioctl(tty, TIOCSCTTY, steal ? 1 : 0) < 0) fail(1);
  for (int fd = 0; fd < 3; fd++) {
    if (tty != fd && dup2(tty, fd) < 0) fail(2);
  }
  if (tty > 2) close(tty);
  if (chdir("/") < 0) {
    // "/" always exists; the shell copes with any cwd anyway.
  }
  execve(x.path.c_str(), x.argv.data(), x.envp.data());
  fail(3);
  _exit(127);
}

// Forks the shell on tty (open in the caller, O_CLOEXEC, kept by the caller) under the
// reaper; on_exit gets its wait status. Returns once the shell runs, or the failed step.
StatusOr<pid_t> SpawnShell(const ShellExec& x, int tty, bool steal, Reaper::ExitFn on_exit) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return ErrnoError(errno, "pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  // The child must see the tty above 2 so the dup2 loop cannot clobber it.
  UniqueFd high(fcntl(tty, F_DUPFD_CLOEXEC, 3));
  if (!high) return ErrnoError(errno, "dup");
  StatusOr<pid_t> pid = Reaper::Get().Spawn(
      [&]() -> StatusOr<pid_t> {
        pid_t c = fork();
        if (c < 0) return ErrnoError(errno, "fork");
        if (c == 0) ExecOnTty(x, high.get(), steal, wr.get());
        return c;
      },
      std::move(on_exit));
  if (!pid.ok()) return pid;
  wr.reset();
  ChildFailure f;
  ssize_t n;
  do {
    n = read(rd.get(), &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof f)) {
    const char* step = f.step >= 0 && f.step < 4 ? kChildSteps[f.step] : "?";
    return ErrnoError(f.err, "start ", x.path, ": ", step);
  }
  return pid;
}

// Sends sig to every process of session sid (the shell and whatever it started, in any
// process group). A session id stays reserved while any member lives, so no stranger is
// hit; once the leader is reaped (leader_reaped) a new process may have its pid, and a
// new session leader would have the same sid: that one is skipped.
void SignalSession(pid_t sid, int sig, bool leader_reaped) {
  DIR* d = opendir("/proc");
  if (!d) return;
  while (struct dirent* e = readdir(d)) {
    char* end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != 0 || pid <= 1 || (leader_reaped && pid == sid)) continue;
    StatusOr<std::string> stat = ReadFileString(StrCat("/proc/", e->d_name, "/stat"), 4096);
    if (!stat.ok()) continue;
    // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
    size_t close_paren = stat->rfind(')');
    if (close_paren == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat->substr(close_paren + 2), ' ');
    if (f.size() > 3 && f[3] == std::to_string(sid)) kill(static_cast<pid_t>(pid), sig);
  }
  closedir(d);
}

// ---- the serial console ----

struct ExitWait {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int status = 0;
};

void SerialConsoleLoop(std::string shell) {
  StatusOr<std::string> active = ReadFileString("/sys/class/tty/console/active", 4096);
  const std::string dev = ConsoleDevice(active.ok() ? *active : "");
  const ShellExec exec(shell);
  RespawnBackoff backoff;
  struct termios initial;
  bool have_initial = false;
  for (;;) {
    Clock::time_point started = Clock::now();
    Status st;
    UniqueFd tty(open(dev.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!tty) {
      st = ErrnoError(errno, "open ", dev);
    } else {
      // A shell that was killed may leave the line in raw mode: start each one from the
      // settings the first one found.
      if (!have_initial) {
        have_initial = tcgetattr(tty.get(), &initial) == 0;
      } else {
        tcsetattr(tty.get(), TCSANOW, &initial);
      }
      auto wait = std::make_shared<ExitWait>();
      StatusOr<pid_t> pid = SpawnShell(exec, tty.get(), /*steal=*/true, [wait](int ws) {
        std::lock_guard<std::mutex> lk(wait->mu);
        wait->done = true;
        wait->status = ws;
        wait->cv.notify_all();
      });
      tty.reset();
      if (pid.ok()) {
        log::Info("debug console: shell started").Kv("tty", dev).Kv("shell", shell).Kv("pid", *pid);
        std::unique_lock<std::mutex> lk(wait->mu);
        wait->cv.wait(lk, [&] { return wait->done; });
        log::Info("debug console: shell ended")
            .Kv("pid", *pid)
            .Kv("status", DescribeWaitStatus(wait->status));
      } else {
        st = pid.status();
      }
    }
    milliseconds delay =
        backoff.Next(std::chrono::duration_cast<milliseconds>(Clock::now() - started));
    if (!st.ok()) {
      log::Warn("debug console: cannot start the shell")
          .Kv("error", st.ToString())
          .Kv("retry_in_ms", delay.count());
    } else if (delay.count() > 0) {
      log::Warn("debug console: the shell ended at once; starting it again later")
          .Kv("retry_in_ms", delay.count());
    }
    std::this_thread::sleep_for(delay);
  }
}

// ---- shells over vsock ----

constexpr size_t kBufCap = 64 * 1024;
constexpr size_t kMaxSessions = 32;
// After the shell exits: how long its last output may take to come out of the pty
// (the pty passes data on through a kernel work item, not synchronously).
constexpr milliseconds kExitGrace{300};
// How long the last output may take to reach a client that reads slowly.
constexpr milliseconds kFlushTimeout{2000};
// Between SIGHUP to the session and SIGKILL to what is left of it.
constexpr milliseconds kKillAfter{2000};
// After a half-close: how often the tty is looked at, and the quiet time (see PassEof).
constexpr milliseconds kEofCheck{200};
constexpr milliseconds kEofQuiet{1000};

constexpr uint64_t kListenTag = 0, kWakeTag = 1;

// Bytes waiting to be written, with the part already written skipped.
struct Pending {
  std::string buf;
  size_t off = 0;
  size_t size() const { return buf.size() - off; }
  bool empty() const { return off == buf.size(); }
  void Consume(size_t n) {
    off += n;
    if (off == buf.size()) {
      buf.clear();
      off = 0;
    }
  }
};

struct Session {
  uint64_t id = 0;
  pid_t pid = 0;
  UniqueFd conn, master;
  Pending to_pty, to_conn;
  uint32_t conn_events = 0, master_events = 0;  // registered interest; 0: not registered
  bool input_over = false;   // the client half-closed: it sends nothing more, still reads
  bool client_gone = false;  // the client closed or failed: nothing more to send it
  bool output_over = false;  // nothing more comes from the pty
  bool exited = false;
  Clock::time_point exited_at, flush_deadline, kill_at;
  Clock::time_point last_output, last_eof, next_eof_check;  // see PassEof
  bool ended = false;                                       // pty closed and the session signalled
  bool killed = false;
};

class VsockConsole {
 public:
  Status Start(UniqueFd listen_fd, std::string shell);

 private:
  struct Exits {
    std::mutex mu;
    std::vector<std::pair<uint64_t, int>> queue;
    int wake_fd = -1;
  };

  void Loop();
  void Accept();
  void Open(UniqueFd conn);
  void Pump(Session& s);
  void PassEof(Session& s, Clock::time_point now);
  // Moves the session along its end (flush, close, hang up, kill); true when it is over.
  bool Advance(Session& s, Clock::time_point now);
  void Interest(int fd, uint64_t tag, uint32_t want, uint32_t* registered);
  void CollectExits();
  int TimeoutMs(Clock::time_point now) const;

  UniqueFd epoll_, listen_, wake_;
  std::string shell_;
  std::unique_ptr<ShellExec> exec_;
  std::shared_ptr<Exits> exits_ = std::make_shared<Exits>();
  std::map<uint64_t, std::unique_ptr<Session>> sessions_;
  uint64_t next_id_ = 1;
};

Status VsockConsole::Start(UniqueFd listen_fd, std::string shell) {
  listen_ = std::move(listen_fd);
  shell_ = std::move(shell);
  if (!shell_.empty()) exec_ = std::make_unique<ShellExec>(shell_);
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return ErrnoError(errno, "epoll_create1");
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) return ErrnoError(errno, "eventfd");
  exits_->wake_fd = wake_.get();
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev) < 0)
    return ErrnoError(errno, "epoll_ctl");
  ev.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) < 0)
    return ErrnoError(errno, "epoll_ctl");
  std::thread([this] { Loop(); }).detach();
  return absl::OkStatus();
}

int VsockConsole::TimeoutMs(Clock::time_point now) const {
  Clock::time_point first = Clock::time_point::max();
  for (const auto& [id, s] : sessions_) {
    if (s->exited && !s->output_over) first = std::min(first, s->exited_at + kExitGrace);
    if (s->conn && s->output_over) first = std::min(first, s->flush_deadline);
    if (s->ended && !s->killed) first = std::min(first, s->kill_at);
    if (s->input_over && !s->exited && !s->output_over && s->master) {
      first = std::min(first, s->next_eof_check);
    }
  }
  if (first == Clock::time_point::max()) return -1;
  if (first <= now) return 0;
  return static_cast<int>(std::chrono::duration_cast<milliseconds>(first - now).count()) + 1;
}

void VsockConsole::Loop() {
  struct epoll_event events[32];
  for (;;) {
    int n = epoll_wait(epoll_.get(), events, 32, TimeoutMs(Clock::now()));
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("debug console: epoll_wait failed; the vsock console stops")
          .Kv("error", ErrnoText(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        Accept();
      } else if (tag == kWakeTag) {
        uint64_t v;
        ssize_t r = read(wake_.get(), &v, sizeof v);
        (void)r;
        CollectExits();
      } else {
        auto it = sessions_.find(tag >> 1);
        if (it == sessions_.end()) continue;
        Session& s = *it->second;
        bool is_conn = (tag & 1) == 0;
        // A hang-up (both directions) ends the session; a half-close is read as EOF below.
        if (is_conn && (events[i].events & (EPOLLHUP | EPOLLERR))) s.client_gone = true;
        Pump(s);
      }
    }
    Clock::time_point now = Clock::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& s = *it->second;
      if (!Advance(s, now)) {
        uint32_t conn_want = 0, master_want = 0;
        if (s.conn) {
          // RDHUP only with IN: after a half-close it is reported for as long as it lasts.
          if (!s.input_over && !s.output_over && s.master && s.to_pty.size() < kBufCap) {
            conn_want = EPOLLIN | EPOLLRDHUP;
          }
          if (!s.to_conn.empty()) conn_want |= EPOLLOUT;
          // Nothing to read or write now: stay registered for the hang-up alone (reported
          // whatever the mask; edge-triggered here, so once).
          if (conn_want == 0) conn_want = EPOLLET;
        }
        if (s.master && !s.output_over) {
          if (s.to_conn.size() < kBufCap) master_want |= EPOLLIN;
          if (!s.to_pty.empty()) master_want |= EPOLLOUT;
        }
        Interest(s.conn.get(), s.id << 1, conn_want, &s.conn_events);
        Interest(s.master.get(), (s.id << 1) | 1, master_want, &s.master_events);
        ++it;
      } else {
        it = sessions_.erase(it);
      }
    }
  }
}

// want 0 takes the fd out of the set: a hung-up pty reports EPOLLHUP whatever is asked,
// and would spin a loop that cannot read it now (its client is not keeping up).
void VsockConsole::Interest(int fd, uint64_t tag, uint32_t want, uint32_t* registered) {
  if (fd < 0 || want == *registered) return;
  struct epoll_event ev = {};
  ev.events = want;
  ev.data.u64 = tag;
  int op = want == 0 ? EPOLL_CTL_DEL : *registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_.get(), op, fd, &ev) == 0) *registered = want;
}

void VsockConsole::CollectExits() {
  std::vector<std::pair<uint64_t, int>> q;
  {
    std::lock_guard<std::mutex> lk(exits_->mu);
    q.swap(exits_->queue);
  }
  for (auto [id, ws] : q) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;  // a shell that failed to start
    Session& s = *it->second;
    s.exited = true;
    s.exited_at = Clock::now();
    log::Info("debug console: shell ended")
        .Kv("session", id)
        .Kv("pid", s.pid)
        .Kv("status", DescribeWaitStatus(ws));
    Pump(s);
  }
}

void VsockConsole::Accept() {
  AcceptPending(listen_.get(), "debug console", [this](UniqueFd c) { Open(std::move(c)); });
}

// Says why to the client, then closes: best effort, the socket is new and empty.
void Refuse(UniqueFd conn, std::string_view why) {
  std::string msg = StrCat("kata-agent: ", why, "\r\n");
  ssize_t r = send(conn.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)r;
}

void VsockConsole::Open(UniqueFd conn) {
  if (!exec_) {
    Refuse(std::move(conn), "no shell (/bin/bash, /bin/sh) in this image");
    return;
  }
  if (sessions_.size() >= kMaxSessions) {
    log::Warn("debug console: too many sessions; connection refused")
        .Kv("sessions", static_cast<uint64_t>(sessions_.size()));
    Refuse(std::move(conn), "too many debug console sessions");
    return;
  }
  auto fail = [&](const Status& st) {
    log::Warn("debug console: cannot start a session").Kv("error", st.ToString());
    Refuse(std::move(conn), StrCat("cannot start a shell: ", st.message()));
  };
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return fail(ErrnoError(errno, "open /dev/ptmx"));
  if (unlockpt(master.get()) < 0) return fail(ErrnoError(errno, "unlockpt"));
  // The peer through the master fd itself: no path lookup that could name another pty.
  UniqueFd slave(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return fail(ErrnoError(errno, "TIOCGPTPEER"));
  struct winsize ws = {};
  ws.ws_row = 24;
  ws.ws_col = 80;
  ioctl(slave.get(), TIOCSWINSZ, &ws);
  if (fcntl(master.get(), F_SETFL, O_NONBLOCK) < 0) return fail(ErrnoError(errno, "O_NONBLOCK"));

  uint64_t id = next_id_++;
  std::weak_ptr<Exits> exits = exits_;
  StatusOr<pid_t> pid = SpawnShell(*exec_, slave.get(), /*steal=*/false, [exits, id](int ws) {
    auto e = exits.lock();
    if (!e) return;
    std::lock_guard<std::mutex> lk(e->mu);
    e->queue.emplace_back(id, ws);
    uint64_t one = 1;
    ssize_t r = write(e->wake_fd, &one, sizeof one);
    (void)r;
  });
  // The shell holds the only slave fds now: the master reads EIO once all are closed.
  slave.reset();
  if (!pid.ok()) return fail(pid.status());

  auto s = std::make_unique<Session>();
  s->id = id;
  s->pid = *pid;
  s->conn = std::move(conn);
  s->master = std::move(master);
  log::Info("debug console: session started").Kv("session", id).Kv("shell", shell_).Kv("pid", *pid);
  sessions_.emplace(id, std::move(s));
}

void VsockConsole::Pump(Session& s) {
  char buf[16384];
  // client -> pty
  if (s.conn && !s.client_gone && !s.input_over && !s.output_over && s.master &&
      s.to_pty.size() < kBufCap) {
    ssize_t n =
        recv(s.conn.get(), buf, std::min(sizeof buf, kBufCap - s.to_pty.size()), MSG_DONTWAIT);
    if (n > 0) {
      s.to_pty.buf.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      s.input_over = true;  // end of input: see PassEof
    } else if (errno != EAGAIN && errno != EINTR) {
      s.client_gone = true;
    }
  }
  if (s.master && !s.to_pty.empty()) {
    ssize_t n = write(s.master.get(), s.to_pty.buf.data() + s.to_pty.off, s.to_pty.size());
    if (n > 0) {
      s.to_pty.Consume(static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      s.output_over = true;  // EIO: nobody holds the slave any more
    }
  }
  // pty -> client
  if (s.master && !s.output_over && s.to_conn.size() < kBufCap) {
    ssize_t n = read(s.master.get(), buf, std::min(sizeof buf, kBufCap - s.to_conn.size()));
    if (n > 0) {
      s.to_conn.buf.append(buf, static_cast<size_t>(n));
      s.last_output = Clock::now();
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      s.output_over = true;
    }
  }
  if (s.conn && !s.client_gone && !s.to_conn.empty()) {
    ssize_t n = send(s.conn.get(), s.to_conn.buf.data() + s.to_conn.off, s.to_conn.size(),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.to_conn.Consume(static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      s.client_gone = true;
    }
  }
}

// After the client's half-close (scripted use: `... | agent-ctl console`), the shell is
// given the tty's end-of-file character, as if typed, and the session ends when it exits.
// A line editor (ash, bash: the tty in raw mode) takes it as the end at an empty line; in
// canonical mode the line discipline makes it end-of-file for a reader. But one that comes
// in canonical mode while a command runs is kept as an end-of-line mark, which the line
// editor later reads as a NUL byte. So it is typed once all sent before has been read (the
// input queue is empty) and the tty is raw or the output has been quiet for a while, and
// typed again after a while for as long as the shell lives on.
void VsockConsole::PassEof(Session& s, Clock::time_point now) {
  if (!s.input_over || s.exited || s.output_over || !s.master || !s.to_pty.empty() ||
      now < s.next_eof_check) {
    return;
  }
  s.next_eof_check = now + kEofCheck;
  UniqueFd peer(ioctl(s.master.get(), TIOCGPTPEER, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  int queued = 0;
  struct termios t;
  if (!peer || ioctl(peer.get(), TIOCINQ, &queued) < 0 || tcgetattr(peer.get(), &t) < 0) return;
  peer.reset();
  const bool raw = (t.c_lflag & ICANON) == 0;
  if (queued != 0 || now - s.last_eof < kEofQuiet) return;
  if (!raw && now - s.last_output < kEofQuiet) return;
  s.to_pty.buf.push_back(t.c_cc[VEOF] ? static_cast<char>(t.c_cc[VEOF]) : '\x04');
  s.last_eof = now;
  Pump(s);
}

bool VsockConsole::Advance(Session& s, Clock::time_point now) {
  PassEof(s, now);
  if (s.exited && !s.output_over && now >= s.exited_at + kExitGrace) {
    s.output_over = true;  // jobs left behind may hold the pty; the shell is gone
  }
  if (s.output_over && s.conn && s.flush_deadline == Clock::time_point()) {
    s.flush_deadline = now + kFlushTimeout;
  }
  if (s.conn &&
      (s.client_gone || (s.output_over && (s.to_conn.empty() || now >= s.flush_deadline)))) {
    Interest(s.conn.get(), 0, 0, &s.conn_events);
    s.conn.reset();
  }
  if (!s.conn && !s.ended) {
    // Closing the master hangs the pty up; the signals reach what ignores the hangup or
    // runs in another process group of the session.
    Interest(s.master.get(), 0, 0, &s.master_events);
    s.master.reset();
    SignalSession(s.pid, SIGHUP, s.exited);
    SignalSession(s.pid, SIGCONT, s.exited);
    s.ended = true;
    s.kill_at = now + kKillAfter;
    log::Info("debug console: session ending")
        .Kv("session", s.id)
        .Kv("pid", s.pid)
        .Kv("reason", s.client_gone ? "client disconnected" : "shell ended");
  }
  if (s.ended && !s.killed && now >= s.kill_at) {
    SignalSession(s.pid, SIGKILL, s.exited);
    s.killed = true;
  }
  return s.ended && s.killed && s.exited;
}

}  // namespace

void StartSerialDebugConsole() {
  std::string shell = FindDebugShell();
  if (shell.empty()) {
    log::Warn(
        "debug console: no shell (/bin/bash, /bin/sh) in this image; agent.debug_console is "
        "ignored");
    return;
  }
  std::thread(SerialConsoleLoop, shell).detach();
}

Status StartVsockDebugConsole(uint32_t port) {
  Address a;
  a.kind = Address::Kind::kVsock;
  a.cid = VMADDR_CID_ANY;
  a.port = port;
  ASSIGN_OR_RETURN(UniqueFd lfd, Listen(a, 16));
  std::string shell = FindDebugShell();
  if (shell.empty()) {
    log::Warn("debug console: no shell (/bin/bash, /bin/sh) in this image; connections are refused")
        .Kv("addr", a.ToString());
  }
  static VsockConsole* console = new VsockConsole();  // serves as long as the agent runs
  RETURN_IF_ERROR(console->Start(std::move(lfd), shell));
  log::Info("debug console listening").Kv("addr", a.ToString()).Kv("shell", shell);
  return absl::OkStatus();
}

}  // namespace kata
