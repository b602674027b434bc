#include "console.h"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "console_escape.h"
#include "rpc/address.h"
#include "util/fs.h"

namespace kata::ctl {
namespace {

constexpr size_t kBufCap = 64 * 1024;

int Fail(const Status& st) {
  fprintf(stderr, "agent-ctl: %s: %s\n", absl::StatusCodeToString(st.code()).c_str(),
          std::string(st.message()).c_str());
  return 1;
}

StatusOr<UniqueFd> Connect(const std::string& addr_s, double timeout_s) {
  if (addr_s.empty()) return absl::InvalidArgumentError("--addr is required");
  ASSIGN_OR_RETURN(Address addr, ParseAddress(addr_s));
  return Dial(addr, static_cast<int>(timeout_s * 1000));
}

// The local terminal in raw mode while it lives; restored by Restore() and the destructor.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {}
  ~RawTerminal() { Restore(); }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  Status Enter() {
    if (!saved_ok_) {
      if (tcgetattr(fd_, &saved_) < 0) return ErrnoError(errno, "tcgetattr");
      saved_ok_ = true;
    }
    struct termios raw = saved_;
    cfmakeraw(&raw);
    if (tcsetattr(fd_, TCSADRAIN, &raw) < 0) return ErrnoError(errno, "tcsetattr");
    raw_ = true;
    return absl::OkStatus();
  }
  void Restore() {
    if (raw_) tcsetattr(fd_, TCSADRAIN, &saved_);
    raw_ = false;
  }

 private:
  int fd_;
  struct termios saved_;
  bool saved_ok_ = false;
  bool raw_ = false;
};

// Signals taken through a signalfd, so that every way out goes through the destructors
// (the terminal restored): termination, and stop/continue around a suspension.
class Signals {
 public:
  Signals() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT}) sigaddset(&set_, s);
    sigprocmask(SIG_BLOCK, &set_, &old_);
    fd_.reset(signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~Signals() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
  int fd() const { return fd_.get(); }
  int Next() {
    struct signalfd_siginfo si;
    ssize_t n = read(fd_.get(), &si, sizeof si);
    return n == static_cast<ssize_t>(sizeof si) ? static_cast<int>(si.ssi_signo) : 0;
  }

 private:
  sigset_t set_, old_;
  UniqueFd fd_;
};

constexpr char kEscapeHelp[] =
    "\r\nSupported escape sequences (after Enter):\r\n"
    "  %c.   leave the console\r\n"
    "  %c^Z  suspend agent-ctl\r\n"
    "  %c?   this list\r\n"
    "  %c%c   send %c\r\n";

void ConsoleUsage(FILE* out) {
  fprintf(out,
          "usage: agent-ctl console --addr ADDR [--escape CHAR|none]\n"
          "  a shell in the guest through the agent's debug console port\n"
          "  (agent.debug_console_vport=1026), e.g. --addr hvsock:///path/vsock.sock:1026\n"
          "  With a terminal: raw mode; Enter ~. leaves, Enter ~? lists the escapes.\n"
          "  Without one: stdin is sent, its end becomes end-of-file for the shell, and the\n"
          "  output is printed until the shell exits.\n");
}

}  // namespace

int ConsoleMain(const std::string& addr_arg, double timeout_s, int argc, char** argv) {
  std::string addr_s = addr_arg;
  std::string escape = "~";
  static const struct option kOpts[] = {
      {"addr", required_argument, nullptr, 'a'},
      {"escape", required_argument, nullptr, 'e'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, "e:", kOpts, nullptr)) != -1) {
    switch (c) {
      case 'a':
        addr_s = optarg;
        break;
      case 'e':
        escape = optarg;
        break;
      case 'h':
        ConsoleUsage(stdout);
        return 0;
      default:
        ConsoleUsage(stderr);
        return 2;
    }
  }
  if (optind < argc || (escape != "none" && escape.size() != 1)) {
    ConsoleUsage(stderr);
    return 2;
  }
  StatusOr<UniqueFd> sock = Connect(addr_s, timeout_s);
  if (!sock.ok()) return Fail(sock.status());
  if (fcntl(sock->get(), F_SETFL, O_NONBLOCK) < 0) return Fail(ErrnoError(errno, "O_NONBLOCK"));

  const bool tty = isatty(STDIN_FILENO);
  const int esc = !tty || escape == "none" ? -1 : static_cast<unsigned char>(escape[0]);
  signal(SIGPIPE, SIG_IGN);
  Signals signals;
  if (signals.fd() < 0) return Fail(ErrnoError(errno, "signalfd"));
  RawTerminal term(STDIN_FILENO);
  if (tty) {
    if (esc >= 0) {
      fprintf(stderr, "agent-ctl: connected to %s; Enter %c. leaves, Enter %c? lists the escapes\n",
              addr_s.c_str(), esc, esc);
    }
    if (Status st = term.Enter(); !st.ok()) return Fail(st);
  }

  EscapeParser parser(esc);
  std::string to_remote;
  bool stdin_open = true, shut_sent = false;
  int rc = 0;
  char buf[16384];
  for (;;) {
    if (!stdin_open && to_remote.empty() && !shut_sent) {
      shutdown(sock->get(), SHUT_WR);  // end of input: the agent passes it on to the shell
      shut_sent = true;
    }
    struct pollfd fds[3] = {
        {stdin_open && to_remote.size() < kBufCap ? STDIN_FILENO : -1, POLLIN, 0},
        {sock->get(), static_cast<short>(POLLIN | (to_remote.empty() ? 0 : POLLOUT)), 0},
        {signals.fd(), POLLIN, 0},
    };
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      rc = Fail(ErrnoError(errno, "poll"));
      break;
    }
    if (fds[2].revents) {
      int sig = signals.Next();
      if (sig == SIGTSTP) {
        term.Restore();
        kill(getpid(), SIGSTOP);
        continue;
      }
      if (sig == SIGCONT) {
        if (tty) (void)term.Enter();
        continue;
      }
      if (sig != 0) {
        rc = 128 + sig;
        break;
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(sock->get(), buf, sizeof buf, 0);
      if (n == 0) break;  // the shell ended or the agent closed the session
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        term.Restore();
        rc = Fail(ErrnoError(errno, "read from the console"));
        break;
      }
      if (n > 0 && !WriteAll(STDOUT_FILENO, std::string_view(buf, static_cast<size_t>(n))).ok()) {
        rc = 1;  // nobody reads the output any more
        break;
      }
    }
    if ((fds[1].revents & POLLOUT) && !to_remote.empty()) {
      ssize_t n = send(sock->get(), to_remote.data(), to_remote.size(), MSG_NOSIGNAL);
      if (n > 0) {
        to_remote.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        term.Restore();
        rc = Fail(ErrnoError(errno, "write to the console"));
        break;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(STDIN_FILENO, buf, std::min(sizeof buf, kBufCap - to_remote.size()));
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        if (tty) break;  // the terminal went away
        stdin_open = false;
        continue;
      }
      std::string_view in(buf, static_cast<size_t>(n));
      bool leave = false;
      while (!in.empty()) {
        size_t used = 0;
        EscapeParser::Event ev = parser.Feed(in, &to_remote, &used);
        in.remove_prefix(used);
        if (ev == EscapeParser::Event::kDisconnect) {
          leave = true;
          break;
        }
        if (ev == EscapeParser::Event::kHelp) {
          char help[sizeof kEscapeHelp + 16];
          int len = snprintf(help, sizeof help, kEscapeHelp, esc, esc, esc, esc, esc, esc);
          (void)WriteAll(STDOUT_FILENO, std::string_view(help, static_cast<size_t>(len)));
        } else if (ev == EscapeParser::Event::kSuspend) {
          term.Restore();
          kill(getpid(), SIGSTOP);
          if (tty) (void)term.Enter();
        }
      }
      if (leave) break;
    }
  }
  term.Restore();
  if (tty) fprintf(stderr, "\nagent-ctl: console closed\n");
  return rc;
}

namespace {

void LogsUsage(FILE* out) {
  fprintf(out,
          "usage: agent-ctl logs --addr ADDR [--follow]\n"
          "  the agent's JSON log lines from its log port (agent.log_vport=1025),\n"
          "  e.g. --addr hvsock:///path/vsock.sock:1025: the lines the agent kept while no one\n"
          "  was connected, then exit; --follow: then new lines as they come\n");
}

// "backlog_lines" of the agent's first line ("log port: client connected"), or -1.
long BacklogLines(std::string_view line) {
  if (line.find("\"msg\":\"log port: client connected\"") == std::string_view::npos) return -1;
  size_t k = line.find("\"backlog_lines\":");
  if (k == std::string_view::npos) return -1;
  return strtol(std::string(line.substr(k + 16, 24)).c_str(), nullptr, 10);
}

}  // namespace

int LogsMain(const std::string& addr_arg, double timeout_s, int argc, char** argv) {
  std::string addr_s = addr_arg;
  bool follow = false;
  static const struct option kOpts[] = {
      {"addr", required_argument, nullptr, 'a'},
      {"follow", no_argument, nullptr, 'f'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, "f", kOpts, nullptr)) != -1) {
    switch (c) {
      case 'a':
        addr_s = optarg;
        break;
      case 'f':
        follow = true;
        break;
      case 'h':
        LogsUsage(stdout);
        return 0;
      default:
        LogsUsage(stderr);
        return 2;
    }
  }
  if (optind < argc) {
    LogsUsage(stderr);
    return 2;
  }
  StatusOr<UniqueFd> sock = Connect(addr_s, timeout_s);
  if (!sock.ok()) return Fail(sock.status());

  // Without --follow: the backlog the first line announces; from a log port that announces
  // nothing, whatever comes until it has been quiet for a second.
  long want = -1, seen = -1;  // seen: lines after the first
  std::string pending;
  char buf[65536];
  for (;;) {
    if (!follow && want >= 0 && seen >= want) return 0;
    struct pollfd p = {sock->get(), POLLIN, 0};
    int timeout_ms = follow ? -1 : want >= 0 ? static_cast<int>(timeout_s * 1000) : 1000;
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Fail(ErrnoError(errno, "poll"));
    if (r == 0) {
      if (want >= 0) return Fail(absl::DeadlineExceededError("the backlog did not arrive in time"));
      break;
    }
    ssize_t n = read(sock->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrnoError(errno, "read from the log port"));
    if (n == 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      std::string_view line(pending.data() + start, nl + 1 - start);
      if (seen < 0) want = BacklogLines(line);
      seen++;
      if (!WriteAll(STDOUT_FILENO, line).ok()) return 1;
      start = nl + 1;
      if (!follow && want >= 0 && seen >= want) break;
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) (void)WriteAll(STDOUT_FILENO, pending);
  return 0;
}

}  // namespace kata::ctl
