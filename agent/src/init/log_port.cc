#include "init/log_port.h"

#include <linux/vm_sockets.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>

#include "rpc/address.h"
#include "util/accept.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace kata {

void LogBacklog::DropOldest() {
  bytes_ -= lines_.front().size();
  lines_.pop_front();
  dropped_++;
  dropped_total_++;
}

void LogBacklog::Push(std::string_view line) {
  if (line.size() > max_bytes_ || max_lines_ == 0) {
    dropped_++;
    dropped_total_++;
    return;
  }
  while (!lines_.empty() && (lines_.size() >= max_lines_ || bytes_ + line.size() > max_bytes_)) {
    DropOldest();
  }
  lines_.emplace_back(line);
  bytes_ += line.size();
}

std::vector<std::string> LogBacklog::Take(size_t max_bytes) {
  std::vector<std::string> out;
  size_t taken = 0;
  while (!lines_.empty()) {
    size_t n = lines_.front().size();
    if (!out.empty() && taken + n > max_bytes) break;
    taken += n;
    bytes_ -= n;
    out.push_back(std::move(lines_.front()));
    lines_.pop_front();
  }
  return out;
}

uint64_t LogBacklog::TakeDropped() { return std::exchange(dropped_, 0); }

std::string LogPortNotice(std::string_view level, std::string_view msg,
                          const std::vector<std::pair<std::string, uint64_t>>& counters) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[64];
  snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
  std::string s = StrCat("{\"time\":\"", tbuf, "\",\"level\":\"", level,
                         "\",\"source\":\"kata-agent\",\"pid\":", getpid(), ",\"msg\":\"");
  log::JsonEscape(msg, &s);
  s.push_back('"');
  for (const auto& [key, value] : counters) {
    s.append(",\"");
    log::JsonEscape(key, &s);
    s.append("\":").append(std::to_string(value));
  }
  s.append("}\n");
  return s;
}

namespace {

// How much is queued for the client before lines are left in the backlog.
constexpr size_t kHighWater = 64 * 1024;

constexpr uint64_t kListenTag = 1, kWakeTag = 2, kClientTag = 3;

class LogPort {
 public:
  Status Start(UniqueFd listen_fd);
  void OnLine(std::string_view line);

 private:
  void Loop();
  void Accept();
  void Fill();
  void Flush();
  void DropClient();
  void Watch();

  std::mutex mu_;
  LogBacklog backlog_{kLogBacklogLines, kLogBacklogBytes};  // guarded by mu_
  bool connected_ = false;                                  // guarded by mu_

  // Owned by the port's thread.
  UniqueFd epoll_, listen_, wake_, client_;
  std::string out_;
  size_t out_off_ = 0;
  uint32_t client_events_ = 0;
};

Status LogPort::Start(UniqueFd listen_fd) {
  listen_ = std::move(listen_fd);
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return ErrnoError(errno, "epoll_create1");
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) return ErrnoError(errno, "eventfd");
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev) < 0)
    return ErrnoError(errno, "epoll_ctl");
  ev.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) < 0)
    return ErrnoError(errno, "epoll_ctl");
  log::AddSink([this](std::string_view line) { OnLine(line); });
  std::thread([this] { Loop(); }).detach();
  return absl::OkStatus();
}

// Called by whichever thread logs: never blocks beyond the short lock, never logs.
void LogPort::OnLine(std::string_view line) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    backlog_.Push(line);
    wake = connected_;
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t r = write(wake_.get(), &one, sizeof one);
    (void)r;  // EAGAIN: the counter is already non-zero, the thread will wake anyway
  }
}

void LogPort::Loop() {
  struct epoll_event events[8];
  for (;;) {
    int n = epoll_wait(epoll_.get(), events, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("log port: epoll_wait failed; the log port stops").Kv("error", ErrnoText(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      switch (events[i].data.u64) {
        case kListenTag:
          Accept();
          break;
        case kWakeTag: {
          uint64_t v;
          ssize_t r = read(wake_.get(), &v, sizeof v);
          (void)r;
          break;
        }
        case kClientTag: {
          if (!client_) break;
          // A client has nothing to say; its input is read only to notice that it left.
          char buf[512];
          ssize_t r = recv(client_.get(), buf, sizeof buf, MSG_DONTWAIT);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            DropClient();
            log::Info("log port: client disconnected");
          }
          break;
        }
      }
    }
    if (client_) {
      Fill();
      Flush();
      if (client_) Watch();
    }
  }
}

void LogPort::Accept() {
  AcceptPending(listen_.get(), "log port", [this](UniqueFd c) {
    bool replaced = static_cast<bool>(client_);
    if (replaced) DropClient();
    client_ = std::move(c);
    client_events_ = EPOLLIN | EPOLLRDHUP;
    struct epoll_event ev = {};
    ev.events = client_events_;
    ev.data.u64 = kClientTag;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, client_.get(), &ev) < 0) {
      client_.reset();
      log::Warn("log port: cannot watch a client").Kv("error", ErrnoText(errno));
      return;
    }
    uint64_t backlog, dropped;
    {
      std::lock_guard<std::mutex> lk(mu_);
      connected_ = true;
      backlog = backlog_.lines();
      dropped = backlog_.TakeDropped();
    }
    out_ = LogPortNotice("info", "log port: client connected",
                         {{"backlog_lines", backlog}, {"dropped_lines", dropped}});
    out_off_ = 0;
    log::Info("log port: client connected")
        .Kv("backlog_lines", backlog)
        .Kv("dropped_lines", dropped)
        .Kv("replaced_previous", replaced);
  });
}

void LogPort::Fill() {
  while (out_.size() - out_off_ < kHighWater) {
    uint64_t dropped;
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> lk(mu_);
      dropped = backlog_.TakeDropped();
      lines = backlog_.Take(kHighWater);
    }
    if (dropped)
      out_ += LogPortNotice("warn", "log port: lines dropped", {{"dropped_lines", dropped}});
    if (lines.empty()) return;
    for (const auto& l : lines) out_ += l;
  }
}

void LogPort::Flush() {
  while (out_off_ < out_.size()) {
    ssize_t n = send(client_.get(), out_.data() + out_off_, out_.size() - out_off_,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      DropClient();
      log::Info("log port: client disconnected").Kv("error", ErrnoText(errno));
      return;
    }
    out_off_ += static_cast<size_t>(n);
  }
  out_.clear();
  out_off_ = 0;
}

// Lines already queued for a client that leaves are lost with it; the backlog keeps the rest.
void LogPort::DropClient() {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, client_.get(), nullptr);
  client_.reset();
  out_.clear();
  out_off_ = 0;
  std::lock_guard<std::mutex> lk(mu_);
  connected_ = false;
}

void LogPort::Watch() {
  uint32_t want =
      EPOLLIN | EPOLLRDHUP | (out_off_ < out_.size() ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  if (want == client_events_) return;
  struct epoll_event ev = {};
  ev.events = want;
  ev.data.u64 = kClientTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, client_.get(), &ev) == 0) client_events_ = want;
}

}  // namespace

Status StartLogPort(uint32_t port) {
  Address a;
  a.kind = Address::Kind::kVsock;
  a.cid = VMADDR_CID_ANY;
  a.port = port;
  ASSIGN_OR_RETURN(UniqueFd lfd, Listen(a, 4));
  static LogPort* lp = new LogPort();  // lives as long as the agent: sinks are never removed
  RETURN_IF_ERROR(lp->Start(std::move(lfd)));
  log::Info("log port listening").Kv("addr", a.ToString());
  return absl::OkStatus();
}

}  // namespace kata
