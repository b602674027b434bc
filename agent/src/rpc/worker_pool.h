// Threads that run RPC handlers. Calls may block for a long time (WaitProcess,
// ReadStdout, GetOOMEvent), so the pool never queues behind a busy worker: a task goes
// to an idle thread or a new one (up to a cap, then it waits for one to free up).
// Idle threads above a small reserve exit after a while, giving their memory back.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace kata {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads = 1024, size_t keep_idle = 4);
  ~WorkerPool() = delete;  // lives as long as the process

  void Submit(std::function<void()> task);

  size_t threads() const;

  static WorkerPool& Default();

 private:
  void Spawn();
  void Loop();

  const size_t max_threads_, keep_idle_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  size_t threads_ = 0, idle_ = 0;
};

}  // namespace kata
