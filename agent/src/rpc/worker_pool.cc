#include "rpc/worker_pool.h"

#include <pthread.h>

#include <chrono>

#include "util/log.h"

namespace kata {

namespace {
// Handlers are shallow; protobuf parsing depth is capped at 100 nested messages.
constexpr size_t kStackSize = 512 * 1024;
}  // namespace

WorkerPool::WorkerPool(size_t max_threads, size_t keep_idle)
    : max_threads_(max_threads), keep_idle_(keep_idle) {}

WorkerPool& WorkerPool::Default() {
  static WorkerPool* pool = new WorkerPool();
  return *pool;
}

size_t WorkerPool::threads() const {
  std::lock_guard<std::mutex> lk(mu_);
  return threads_;
}

void WorkerPool::Submit(std::function<void()> task) {
  std::unique_lock<std::mutex> lk(mu_);
  queue_.push_back(std::move(task));
  if (idle_ >= queue_.size()) {
    cv_.notify_one();
    return;
  }
  if (threads_ < max_threads_) {
    threads_++;
    lk.unlock();
    Spawn();
    return;
  }
  log::Warn("all RPC worker threads busy; call queued").Kv("threads", static_cast<uint64_t>(threads_));
}

void WorkerPool::Spawn() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackSize);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int err = pthread_create(
      &t, &attr,
      [](void* self) -> void* {
        static_cast<WorkerPool*>(self)->Loop();
        return nullptr;
      },
      this);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    log::Error("cannot start an RPC worker thread").Kv("errno", err);
    std::lock_guard<std::mutex> lk(mu_);
    threads_--;
  }
}

void WorkerPool::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    while (queue_.empty()) {
      idle_++;
      bool timed_out = cv_.wait_for(lk, std::chrono::seconds(30)) == std::cv_status::timeout;
      idle_--;
      if (timed_out && queue_.empty() && threads_ > keep_idle_) {
        threads_--;
        return;
      }
    }
    auto task = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    task();
    task = nullptr;
    lk.lock();
  }
}

}  // namespace kata
