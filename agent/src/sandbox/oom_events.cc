#include "sandbox/oom_events.h"

#include "util/log.h"

namespace kata {

void OomEvents::Push(std::string container_id) {
  std::lock_guard<std::mutex> lk(mu_);
  if (queue_.size() >= kMaxPending) {
    log::Warn("OOM event queue full; dropping the oldest event").Kv("container_id", queue_.front());
    queue_.pop_front();
  }
  queue_.push_back(std::move(container_id));
  // Every waiter re-checks the queue: a waiter whose call just ended must not swallow
  // the wake-up meant for another.
  cv_.notify_all();
}

StatusOr<std::string> OomEvents::Wait(CallContext& ctx) {
  std::unique_lock<std::mutex> lk(mu_);
  RETURN_IF_ERROR(ctx.Wait(lk, cv_, [this] { return !queue_.empty(); }));
  std::string id = std::move(queue_.front());
  queue_.pop_front();
  return id;
}

size_t OomEvents::pending() const {
  std::lock_guard<std::mutex> lk(mu_);
  return queue_.size();
}

}  // namespace kata
