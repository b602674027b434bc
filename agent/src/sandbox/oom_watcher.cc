#include "sandbox/oom_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "runtime/cgroup_stats.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {

OomWatcher::~OomWatcher() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t r = write(stop_.get(), &one, sizeof one);
    (void)r;
    thread_.join();
  }
}

Status OomWatcher::Start() {
  inotify_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_) return ErrnoError(errno, "inotify_init1");
  stop_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) return ErrnoError(errno, "eventfd");
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

Status OomWatcher::Watch(const std::string& id, const std::string& path) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!inotify_) return absl::FailedPreconditionError("the OOM watcher is not started");
  int wd = inotify_add_watch(inotify_.get(), path.c_str(), IN_MODIFY);
  if (wd < 0) return ErrnoError(errno, "inotify_add_watch ", path);
  Entry e{id, path, 0};
  if (StatusOr<std::string> t = ReadFileString(path); t.ok())
    e.oom_kills = ParseFlatKeyed(*t)["oom_kill"];
  by_wd_[wd] = std::move(e);
  wd_of_[id] = wd;
  return absl::OkStatus();
}

void OomWatcher::Unwatch(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = wd_of_.find(id);
  if (it == wd_of_.end()) return;
  auto e = by_wd_.find(it->second);
  if (e != by_wd_.end()) {
    Check(e->second);
    by_wd_.erase(e);
  }
  inotify_rm_watch(inotify_.get(), it->second);
  wd_of_.erase(it);
}

void OomWatcher::Check(Entry& e) {
  StatusOr<std::string> t = ReadFileString(e.path);
  if (!t.ok()) return;  // the cgroup is gone
  uint64_t kills = ParseFlatKeyed(*t)["oom_kill"];
  if (kills <= e.oom_kills) return;
  uint64_t n = kills - e.oom_kills;
  e.oom_kills = kills;
  log::Warn("container OOM kill").Kv("container", e.id).Kv("kills", n).Kv("total", kills);
  for (uint64_t i = 0; i < n; i++) events_->Push(e.id);
}

void OomWatcher::Run() {
  alignas(struct inotify_event) char buf[4096];
  for (;;) {
    struct pollfd p[2] = {{inotify_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::Error("OOM watcher: poll failed").Kv("error", ErrnoText(errno));
      return;
    }
    if (p[1].revents) return;
    ssize_t n = read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) continue;
    std::lock_guard<std::mutex> lk(mu_);
    for (char* at = buf; at < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(at);
      at += sizeof(struct inotify_event) + ev->len;
      auto it = by_wd_.find(ev->wd);
      if (it == by_wd_.end()) continue;
      if (ev->mask & IN_IGNORED) {  // the cgroup was removed
        auto w = wd_of_.find(it->second.id);
        if (w != wd_of_.end() && w->second == ev->wd) wd_of_.erase(w);
        by_wd_.erase(it);
        continue;
      }
      Check(it->second);
    }
  }
}

}  // namespace kata
