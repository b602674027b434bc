// The per-call context every handler receives, whatever the transport (gRPC or ttrpc):
// the method name, the deadline, and cancellation.
//
// Handlers that block (WaitProcess, ReadStdout, GetOOMEvent) must wait through
// Wait() or WaitFd(): both return when the condition holds, when the call's deadline
// passes (DEADLINE_EXCEEDED) or when the client went away (CANCELLED), so no thread
// stays blocked for a call nobody waits for.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "util/status.h"

namespace kata {

class CancelToken {
 public:
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Marks the call cancelled and runs every registered callback once.
  void Cancel();
  // Registers fn to run on cancellation (at once if already cancelled). Returns an id.
  uint64_t OnCancel(std::function<void()> fn);
  // Unregisters; after it returns the callback is not running and will not run.
  void Remove(uint64_t id);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::function<void()>> callbacks_;
};

class CallContext {
 public:
  using Clock = std::chrono::steady_clock;

  CallContext() = default;
  explicit CallContext(std::string method, Clock::time_point deadline = Clock::time_point::max())
      : method_(std::move(method)), deadline_(deadline) {}

  const std::string& method() const { return method_; }
  Clock::time_point deadline() const { return deadline_; }
  void set_deadline(Clock::time_point d) { deadline_ = d; }
  CancelToken& cancel_token() { return cancel_; }
  bool cancelled() const { return cancel_.cancelled(); }

  // OK while the call may go on; CANCELLED or DEADLINE_EXCEEDED otherwise.
  Status Alive() const;

  // Waits on cv (lk held by the caller, as for cv.wait) until pred() is true. Returns OK,
  // or the status of Alive() when the call ends first; pred is re-checked under lk.
  template <typename Pred>
  Status Wait(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, Pred pred) {
    if (pred()) return absl::OkStatus();
    std::mutex* m = lk.mutex();
    // Register without holding lk: the callback takes lk's mutex, and OnCancel runs it at
    // once when the call is already cancelled (and Cancel() runs it under the token's lock).
    lk.unlock();
    uint64_t id = cancel_.OnCancel([m, &cv] {
      std::lock_guard<std::mutex> g(*m);
      cv.notify_all();
    });
    lk.lock();
    Status st = absl::OkStatus();
    while (!pred()) {
      st = Alive();
      if (!st.ok()) break;
      if (deadline_ == Clock::time_point::max()) {
        cv.wait(lk);
      } else {
        cv.wait_until(lk, deadline_);
      }
    }
    if (st.ok() || pred()) st = absl::OkStatus();
    // Unregister without holding lk: the callback takes lk's mutex.
    lk.unlock();
    cancel_.Remove(id);
    lk.lock();
    return st;
  }

  // Waits until fd is ready for events (poll(2) semantics). OK with *revents set, or the
  // status of Alive() when the call ends first.
  Status WaitFd(int fd, short events, short* revents = nullptr);

 private:
  std::string method_;
  Clock::time_point deadline_ = Clock::time_point::max();
  CancelToken cancel_;
};

}  // namespace kata
