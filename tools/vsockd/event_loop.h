// A single-threaded epoll loop with one-shot timers and an end-of-batch hook.
//
//   EventLoop loop;
//   ASSIGN_OR_RETURN(auto id, loop.Add(fd, EPOLLIN, [&](uint32_t ev) { ... }));
//   loop.After(5000, [&] { ... });      // once, in 5 s
//   loop.SetBatchHook([&] { ... });      // after each batch of events (flush, signal)
//   RETURN_IF_ERROR(loop.Run());         // until Stop()
//
// Handlers are found by id, not by fd: an event that arrives for a handler removed earlier
// in the same batch (its fd closed, the number maybe reused) is dropped.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "util/status.h"
#include "util/unique_fd.h"

namespace kata::vsock {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;
  using HandlerId = uint64_t;
  using TimerId = uint64_t;
  using Clock = std::chrono::steady_clock;

  EventLoop();
  Status Init();

  StatusOr<HandlerId> Add(int fd, uint32_t events, Handler h);
  Status Modify(HandlerId id, uint32_t events);
  // Unregisters; the caller still owns (and closes) the fd.
  void Remove(HandlerId id);

  TimerId After(int64_t ms, std::function<void()> fn);
  void Cancel(TimerId id);

  void SetBatchHook(std::function<void()> hook) { batch_hook_ = std::move(hook); }

  Status Run();
  // One round: waits up to timeout_ms (or the next timer), dispatches, runs the hook.
  Status RunOnce(int timeout_ms);
  void Stop() { stop_ = true; }

 private:
  struct Entry {
    int fd;
    Handler handler;
  };
  int NextTimeoutMs(int cap_ms) const;
  void RunDueTimers();

  UniqueFd epfd_;
  HandlerId next_id_ = 1;
  std::unordered_map<HandlerId, Entry> handlers_;
  TimerId next_timer_ = 1;
  std::multimap<Clock::time_point, TimerId> timer_queue_;
  std::unordered_map<TimerId, std::pair<Clock::time_point, std::function<void()>>> timers_;
  std::function<void()> batch_hook_;
  bool stop_ = false;
};

}  // namespace kata::vsock
