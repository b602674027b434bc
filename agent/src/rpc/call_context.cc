#include "rpc/call_context.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

#include "util/strcat.h"
#include "util/unique_fd.h"

namespace kata {

void CancelToken::Cancel() {
  std::lock_guard<std::mutex> lk(mu_);
  if (cancelled_.exchange(true)) return;
  for (auto& [id, fn] : callbacks_) fn();
}

uint64_t CancelToken::OnCancel(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  if (cancelled_.load()) {
    fn();
    return 0;
  }
  uint64_t id = next_id_++;
  callbacks_.emplace(id, std::move(fn));
  return id;
}

void CancelToken::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lk(mu_);
  callbacks_.erase(id);
}

Status CallContext::Alive() const {
  if (cancelled()) return absl::CancelledError(StrCat(method_, ": cancelled by the client"));
  if (deadline_ != Clock::time_point::max() && Clock::now() >= deadline_) {
    return absl::DeadlineExceededError(StrCat(method_, ": deadline exceeded"));
  }
  return absl::OkStatus();
}

Status CallContext::WaitFd(int fd, short events, short* revents) {
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoError(errno, "eventfd");
  int wfd = wake.get();
  uint64_t id = cancel_.OnCancel([wfd] {
    uint64_t one = 1;
    ssize_t r = write(wfd, &one, sizeof one);
    (void)r;
  });
  Status st = absl::OkStatus();
  for (;;) {
    st = Alive();
    if (!st.ok()) break;
    int timeout = -1;
    if (deadline_ != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      timeout = left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left + 1, 1 << 30));
    }
    struct pollfd p[2] = {{fd, events, 0}, {wfd, POLLIN, 0}};
    int r = poll(p, 2, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      st = ErrnoError(errno, "poll");
      break;
    }
    if (p[0].revents) {
      if (revents) *revents = p[0].revents;
      break;
    }
  }
  cancel_.Remove(id);
  return st;
}

}  // namespace kata
