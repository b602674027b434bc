#include "rpc/listener.h"

#include <sys/eventfd.h>
#include <sys/socket.h>

#include "util/log.h"

namespace kata {

Listener::~Listener() { Stop(); }

Status Listener::Add(UniqueFd lfd, std::string name) {
  listeners_.emplace_back(std::move(lfd), std::move(name));
  return absl::OkStatus();
}

Status Listener::Start() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return ErrnoError(errno, "epoll_create1");
  stop_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_) return ErrnoError(errno, "eventfd");
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = stop_.get();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stop_.get(), &ev) < 0) return ErrnoError(errno, "epoll_ctl");
  for (auto& [fd, name] : listeners_) {
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) < 0) {
      return ErrnoError(errno, "epoll_ctl ", name);
    }
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Listener::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t r = write(stop_.get(), &one, sizeof one);
  (void)r;
  thread_.join();
}

void Listener::Loop() {
  struct epoll_event events[64];
  for (;;) {
    int timeout = -1;
    if (!pending_.empty()) {
      auto now = std::chrono::steady_clock::now();
      auto first = now + sniff_timeout_;
      for (auto& [fd, p] : pending_) first = std::min(first, p.deadline);
      timeout = static_cast<int>(
          std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(first - now).count() + 1));
    }
    int n = epoll_wait(epoll_.get(), events, 64, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("epoll_wait failed; the listener stops").Kv("error", ErrnoText(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == stop_.get()) return;
      bool is_listener = false;
      for (auto& l : listeners_) is_listener |= l.first.get() == fd;
      if (is_listener) {
        AcceptAll(fd);
      } else {
        Examine(fd);
      }
    }
    auto now = std::chrono::steady_clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        log::Debug("closing a connection that sent nothing").Kv("fd", it->first);
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->first, nullptr);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void Listener::AcceptAll(int lfd) {
  for (;;) {
    int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EMFILE || errno == ENFILE) {
        log::Error("accept: out of file descriptors").Kv("error", ErrnoText(errno));
      } else if (errno != ECONNABORTED) {
        log::Warn("accept failed").Kv("error", ErrnoText(errno));
      }
      return;
    }
    // Edge-triggered: a partial HTTP/2 preface stays unread (peeked only), and a
    // level-triggered wait would spin on it until the rest arrives.
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = c;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c, &ev) < 0) {
      close(c);
      continue;
    }
    pending_[c] = Pending{UniqueFd(c), std::chrono::steady_clock::now() + sniff_timeout_};
  }
}

void Listener::Drop(int fd) {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  pending_.erase(fd);
}

void Listener::Examine(int fd) {
  auto it = pending_.find(fd);
  if (it == pending_.end()) return;
  char buf[kHttp2Preface.size()];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    Drop(fd);
    return;
  }
  Protocol p = SniffProtocol(std::string_view(buf, static_cast<size_t>(n)));
  if (p == Protocol::kNeedMore) return;
  UniqueFd conn = std::move(it->second.fd);
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  pending_.erase(it);
  if (p == Protocol::kGrpc && grpc_) {
    grpc_(std::move(conn));
  } else if (p == Protocol::kTtrpc && ttrpc_) {
    ttrpc_(std::move(conn));
  } else {
    log::Warn("closing a connection speaking an unknown protocol").Kv("first_byte", static_cast<int>(static_cast<unsigned char>(buf[0])));
  }
}

}  // namespace kata
