// Out-of-memory kills, queued for the runtime's GetOOMEvent long-poll.
//
//   OomEvents oom;
//   oom.Push("c1");                       // a container's cgroup saw an oom_kill
//   StatusOr<std::string> id = oom.Wait(ctx);  // in GetOOMEvent: the oldest undelivered
//                                              // event, waiting for one if none is queued
//
// Each event is delivered once, to one caller, oldest first. A Wait() ends with the
// call's status (DEADLINE_EXCEEDED, CANCELLED) when the call ends before an event comes.
// The queue is bounded: past kMaxPending the oldest events are dropped (and logged), so a
// runtime that never polls cannot make the agent grow without limit.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

class OomEvents {
 public:
  static constexpr size_t kMaxPending = 1024;

  void Push(std::string container_id);
  StatusOr<std::string> Wait(CallContext& ctx);
  size_t pending() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
};

}  // namespace kata
