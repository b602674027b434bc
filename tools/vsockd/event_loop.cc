#include "event_loop.h"

#include <algorithm>

namespace kata::vsock {

EventLoop::EventLoop() = default;

Status EventLoop::Init() {
  epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_) return ErrnoError(errno, "epoll_create1");
  return absl::OkStatus();
}

StatusOr<EventLoop::HandlerId> EventLoop::Add(int fd, uint32_t events, Handler h) {
  HandlerId id = next_id_++;
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = id;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
    return ErrnoError(errno, "epoll_ctl ADD fd ", fd);
  handlers_.emplace(id, Entry{fd, std::move(h)});
  return id;
}

Status EventLoop::Modify(HandlerId id, uint32_t events) {
  auto it = handlers_.find(id);
  if (it == handlers_.end()) return absl::NotFoundError("no such handler");
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.u64 = id;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, it->second.fd, &ev) < 0) {
    return ErrnoError(errno, "epoll_ctl MOD fd ", it->second.fd);
  }
  return absl::OkStatus();
}

void EventLoop::Remove(HandlerId id) {
  auto it = handlers_.find(id);
  if (it == handlers_.end()) return;
  epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  handlers_.erase(it);
}

EventLoop::TimerId EventLoop::After(int64_t ms, std::function<void()> fn) {
  TimerId id = next_timer_++;
  auto when = Clock::now() + std::chrono::milliseconds(ms);
  timers_.emplace(id, std::make_pair(when, std::move(fn)));
  timer_queue_.emplace(when, id);
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto range = timer_queue_.equal_range(it->second.first);
  for (auto q = range.first; q != range.second; ++q) {
    if (q->second == id) {
      timer_queue_.erase(q);
      break;
    }
  }
  timers_.erase(it);
}

int EventLoop::NextTimeoutMs(int cap_ms) const {
  if (timer_queue_.empty()) return cap_ms;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(timer_queue_.begin()->first -
                                                                    Clock::now())
                  .count() +
              1;
  if (left < 0) left = 0;
  if (cap_ms >= 0 && left > cap_ms) return cap_ms;
  return static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

void EventLoop::RunDueTimers() {
  auto now = Clock::now();
  while (!timer_queue_.empty() && timer_queue_.begin()->first <= now) {
    TimerId id = timer_queue_.begin()->second;
    timer_queue_.erase(timer_queue_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    auto fn = std::move(it->second.second);
    timers_.erase(it);
    fn();
  }
}

Status EventLoop::RunOnce(int timeout_ms) {
  struct epoll_event evs[64];
  int n = epoll_wait(epfd_.get(), evs, 64, NextTimeoutMs(timeout_ms));
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return ErrnoError(errno, "epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    // epoll_event is packed: copy the key out rather than bind a misaligned reference to it.
    const HandlerId id = evs[i].data.u64;
    auto it = handlers_.find(id);
    if (it == handlers_.end()) continue;  // removed earlier in this batch
    // Copy: the handler may remove itself.
    Handler h = it->second.handler;
    h(evs[i].events);
  }
  RunDueTimers();
  if (batch_hook_) batch_hook_();
  return absl::OkStatus();
}

Status EventLoop::Run() {
  stop_ = false;
  while (!stop_) RETURN_IF_ERROR(RunOnce(-1));
  return absl::OkStatus();
}

}  // namespace kata::vsock
