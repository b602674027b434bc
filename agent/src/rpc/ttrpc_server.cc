#include "rpc/ttrpc_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <vector>

#include "rpc/ttrpc_codec.h"
#include "rpc/worker_pool.h"
#include "ttrpc.pb.h"
#include "util/log.h"

namespace kata {
namespace {

// A peer that takes no byte of a response for this long is gone; its connection is closed.
constexpr int kWriteStallTimeoutMs = 60 * 1000;
// Bytes read from one connection per wake-up before the poller looks at the others.
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadChunksPerWake = 4;
// Flow control: past either limit the poller stops reading the connection until calls
// finish, so one client cannot queue unbounded work or memory (the worker pool's own cap
// is 1024 threads).
constexpr size_t kMaxCallsPerConn = 1024;
constexpr size_t kMaxBytesPerConn = 64u << 20;
// timeout_nano beyond this (about 100 years) means no deadline, and cannot overflow the clock.
constexpr int64_t kNoDeadlineNanos = int64_t{100} * 365 * 24 * 3600 * 1000000000;

CallContext::Clock::time_point DeadlineFor(int64_t timeout_nano) {
  if (timeout_nano == 0 || timeout_nano > kNoDeadlineNanos)
    return CallContext::Clock::time_point::max();
  // A negative timeout is a deadline the client already passed: the call is not run.
  auto now = CallContext::Clock::now();
  if (timeout_nano < 0) return now;
  return now + std::chrono::duration_cast<CallContext::Clock::duration>(
                   std::chrono::nanoseconds(timeout_nano));
}

// Sends head and then body as one stream of bytes (one sendmsg while the socket takes it
// all), waiting for the peer when the socket is full.
Status WriteAll(int fd, std::string_view head, std::string_view body) {
  std::string_view parts[2] = {head, body};
  while (!parts[0].empty() || !parts[1].empty()) {
    struct iovec iov[2];
    size_t n_iov = 0;
    for (std::string_view p : parts) {
      if (!p.empty()) iov[n_iov++] = {const_cast<char*>(p.data()), p.size()};
    }
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = n_iov;
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      auto left = static_cast<size_t>(n);
      for (std::string_view& p : parts) {
        size_t take = std::min(left, p.size());
        p.remove_prefix(take);
        left -= take;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLOUT, 0};
      int r = poll(&p, 1, kWriteStallTimeoutMs);
      if (r < 0 && errno != EINTR) return ErrnoError(errno, "poll");
      if (r == 0) return absl::DeadlineExceededError("the peer has not read for 60 s");
      continue;
    }
    return ErrnoError(n < 0 ? errno : EPIPE, "sendmsg");
  }
  return absl::OkStatus();
}

}  // namespace

// One client connection. The poller thread alone reads it (decoder_, HandleFrame); workers
// write to it under write_mu_. It lives while the poller or a running call holds it, so
// the socket is closed only after the last response attempt.
class TtrpcServer::Conn : public std::enable_shared_from_this<TtrpcServer::Conn> {
 public:
  Conn(UniqueFd fd, const Dispatcher& d, int epoll_fd, uint64_t id)
      : fd_(std::move(fd)), dispatcher_(d), epoll_fd_(epoll_fd), id_(id) {}

  int fd() const { return fd_.get(); }
  bool paused() {
    std::lock_guard<std::mutex> lk(calls_mu_);
    return paused_;
  }
  ttrpc::FrameDecoder& decoder() { return decoder_; }

  void HandleFrame(ttrpc::Frame f);

  // Ends the connection: no more responses, every running call cancelled, and the socket
  // shut down (which also wakes a worker blocked writing to it).
  void Abort();

  size_t in_flight() {
    std::lock_guard<std::mutex> lk(calls_mu_);
    return calls_.size();
  }

 private:
  void Run(uint32_t stream_id, const std::shared_ptr<CallContext>& ctx, const std::string& payload);
  // Answers a frame that never became a call, from a worker (the poller never writes).
  void ReplyLater(uint32_t stream_id, Status st);
  void Send(const ttrpc::ResponseParts& frame);
  // Starts or stops reading (calls_mu_ held).
  void Watch(bool read);

  UniqueFd fd_;
  const Dispatcher& dispatcher_;
  const int epoll_fd_;
  const uint64_t id_;
  ttrpc::FrameDecoder decoder_;
  std::mutex write_mu_;
  std::mutex calls_mu_;  // guards calls_
  std::unordered_map<uint32_t, std::shared_ptr<CallContext>> calls_;
  size_t in_flight_bytes_ = 0;
  bool paused_ = false;
  std::atomic<bool> closed_{false};
};

void TtrpcServer::Conn::Watch(bool read) {
  struct epoll_event ev = {};
  // Paused, it still hears a hang-up (always reported), so its calls are still cancelled.
  ev.events = read ? EPOLLIN | EPOLLRDHUP : 0;
  ev.data.u64 = id_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_.get(), &ev) < 0 && errno != ENOENT) {
    log::Warn("ttrpc: epoll_ctl failed").Kv("error", ErrnoText(errno));
  }
}

void TtrpcServer::Conn::HandleFrame(ttrpc::Frame f) {
  const uint32_t sid = f.header.stream_id;
  if (f.oversized) {
    ReplyLater(sid, absl::ResourceExhaustedError(StrCat("message length ", f.header.length,
                                                        " exceeds the maximum message size of ",
                                                        ttrpc::kMaxMessageSize)));
    return;
  }
  if (f.header.type != ttrpc::kRequest) {
    // Ignored, as containerd does, so newer clients' frame types do not break a connection.
    log::Debug("ttrpc: ignoring a frame that is not a request")
        .Kv("type", f.header.type)
        .Kv("stream", sid);
    return;
  }
  StatusOr<::ttrpc::Request> req = ttrpc::ParseRequest(f.payload);
  if (!req.ok()) {
    ReplyLater(sid, req.status());
    return;
  }
  if (sid % 2 != 1) {
    ReplyLater(sid,
               absl::InvalidArgumentError("StreamID must be odd for client initiated streams"));
    return;
  }
  auto ctx =
      std::make_shared<CallContext>(ttrpc::FullMethod(*req), DeadlineFor(req->timeout_nano()));
  {
    std::lock_guard<std::mutex> lk(calls_mu_);
    if (closed_) return;
    if (!calls_.emplace(sid, ctx).second) {
      ReplyLater(sid, absl::InvalidArgumentError(
                          StrCat("stream ", sid, " already has a call in progress")));
      return;
    }
    in_flight_bytes_ += req->payload().size();
    if (!paused_ && (calls_.size() >= kMaxCallsPerConn || in_flight_bytes_ >= kMaxBytesPerConn)) {
      log::Warn("ttrpc: too much in progress on one connection; reading paused")
          .Kv("calls", static_cast<uint64_t>(calls_.size()))
          .Kv("bytes", static_cast<uint64_t>(in_flight_bytes_));
      paused_ = true;
      Watch(false);
    }
  }
  WorkerPool::Default().Submit(
      [self = shared_from_this(), sid, ctx, payload = std::move(*req->mutable_payload())] {
        self->Run(sid, ctx, payload);
      });
}

void TtrpcServer::Conn::Run(uint32_t sid, const std::shared_ptr<CallContext>& ctx,
                            const std::string& payload) {
  std::string out;
  // A call whose deadline passed, or whose connection closed, while it waited for a
  // thread is answered without running its handler.
  Status st = ctx->Alive();
  if (st.ok()) st = dispatcher_.Call(*ctx, payload, &out);
  {
    std::lock_guard<std::mutex> lk(calls_mu_);
    calls_.erase(sid);
    in_flight_bytes_ -= payload.size();
    if (paused_ && !closed_ && calls_.size() < kMaxCallsPerConn &&
        in_flight_bytes_ < kMaxBytesPerConn) {
      paused_ = false;
      Watch(true);
    }
  }
  if (closed_) return;
  Send(ttrpc::EncodeResponseParts(sid, st, out));
}

void TtrpcServer::Conn::ReplyLater(uint32_t sid, Status st) {
  log::Debug("ttrpc: rejecting a frame").Kv("stream", sid).Kv("error", st.ToString());
  WorkerPool::Default().Submit([self = shared_from_this(), sid, st = std::move(st)] {
    if (!self->closed_) self->Send(ttrpc::EncodeResponseParts(sid, st, {}));
  });
}

void TtrpcServer::Conn::Send(const ttrpc::ResponseParts& frame) {
  std::lock_guard<std::mutex> lk(write_mu_);
  if (closed_) return;
  if (Status st = WriteAll(fd_.get(), frame.head, frame.payload); !st.ok()) {
    // Part of a frame may have gone out: the stream is unusable. The poller sees the
    // shutdown as end of input and closes the connection.
    log::Warn("ttrpc: cannot send a response; closing the connection").Kv("error", st.ToString());
    shutdown(fd_.get(), SHUT_RDWR);
  }
}

void TtrpcServer::Conn::Abort() {
  std::vector<std::shared_ptr<CallContext>> running;
  {
    std::lock_guard<std::mutex> lk(calls_mu_);
    if (closed_.exchange(true)) return;
    for (auto& [sid, ctx] : calls_) running.push_back(ctx);
  }
  for (auto& ctx : running) ctx->cancel_token().Cancel();
  shutdown(fd_.get(), SHUT_RDWR);
}

TtrpcServer::~TtrpcServer() { Shutdown(); }

Status TtrpcServer::StartPoller() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return ErrnoError(errno, "epoll_create1");
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) return ErrnoError(errno, "eventfd");
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // connection ids start at 1
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) < 0)
    return ErrnoError(errno, "epoll_ctl");
  poller_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void TtrpcServer::AddConnection(UniqueFd fd) {
  std::call_once(start_once_, [this] { start_status_ = StartPoller(); });
  if (!start_status_.ok()) {
    log::Error("ttrpc: cannot serve connections").Kv("error", start_status_.ToString());
    return;
  }
  if (stopping_) return;
  int fl = fcntl(fd.get(), F_GETFL);
  if (fl < 0 || fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK) < 0) {
    log::Warn("ttrpc: cannot make a connection non-blocking").Kv("error", ErrnoText(errno));
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t id = next_id_++;
  auto conn = std::make_shared<Conn>(std::move(fd), dispatcher_, epoll_.get(), id);
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn->fd(), &ev) < 0) {
    log::Warn("ttrpc: cannot watch a connection").Kv("error", ErrnoText(errno));
    return;
  }
  conns_.emplace(id, std::move(conn));
  log::Debug("ttrpc: connection")
      .Kv("id", id)
      .Kv("connections", static_cast<uint64_t>(conns_.size()));
}

size_t TtrpcServer::connections() const {
  std::lock_guard<std::mutex> lk(mu_);
  return conns_.size();
}

void TtrpcServer::Loop() {
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("ttrpc: epoll_wait failed; no more requests are read")
          .Kv("error", ErrnoText(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == 0) {
        if (stopping_) return;
        continue;
      }
      ReadFrom(events[i].data.u64, events[i].events);
    }
  }
}

void TtrpcServer::ReadFrom(uint64_t id, uint32_t events) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    c = it->second;
  }
  if (c->paused()) {
    if (events & (EPOLLHUP | EPOLLERR)) Close(id, "hung up while paused");
    return;
  }
  static thread_local std::vector<char> buf(kReadChunk);
  for (int i = 0; i < kReadChunksPerWake; i++) {
    ssize_t n = recv(c->fd(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == ECONNRESET) {
        Close(id, "reset by the peer");
      } else {
        log::Warn("ttrpc: read failed").Kv("error", ErrnoText(errno));
        Close(id, "read error");
      }
      return;
    }
    if (n == 0) {
      if (!c->decoder().idle()) {
        log::Warn("ttrpc: connection closed inside a frame")
            .Kv("partial_bytes", static_cast<uint64_t>(c->decoder().partial_bytes()));
        Close(id, "truncated frame");
      } else {
        Close(id, "closed by the peer");
      }
      return;
    }
    c->decoder().Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
    while (std::optional<ttrpc::Frame> f = c->decoder().Next()) c->HandleFrame(std::move(*f));
    if (static_cast<size_t>(n) < buf.size() || c->paused()) return;
  }
}

void TtrpcServer::Close(uint64_t id, const char* why) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    c = std::move(it->second);
    conns_.erase(it);
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c->fd(), nullptr);
  }
  log::Debug("ttrpc: connection closed")
      .Kv("id", id)
      .Kv("why", why)
      .Kv("calls_cancelled", static_cast<uint64_t>(c->in_flight()));
  c->Abort();
}

void TtrpcServer::Shutdown() {
  if (stopping_.exchange(true)) return;
  if (poller_.joinable()) {
    uint64_t one = 1;
    ssize_t r = write(wake_.get(), &one, sizeof one);
    (void)r;
    poller_.join();
  }
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> conns;
  {
    std::lock_guard<std::mutex> lk(mu_);
    conns.swap(conns_);
  }
  for (auto& [id, c] : conns) c->Abort();
}

}  // namespace kata
