// ttrpc client side: one call at a time on one connection, stream ids 1, 3, 5, ...
// Frames for other streams (a late answer to a call that timed out here) are skipped.
#include <poll.h>
#include <sys/socket.h>

#include "rpc/ttrpc_codec.h"
#include "transport.h"

namespace kata::ctl {
namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

Status WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, MsLeft(deadline));
    if (r > 0) return absl::OkStatus();
    if (r == 0) return absl::DeadlineExceededError("ttrpc: no response before the deadline");
    if (errno != EINTR) return ErrnoError(errno, "poll");
  }
}

class TtrpcTransport : public Transport {
 public:
  explicit TtrpcTransport(UniqueFd fd) : fd_(std::move(fd)) {}

  Status Call(const std::string& method, const std::string& request, std::string* response,
              std::chrono::milliseconds timeout) override {
    if (broken_) return absl::UnavailableError("ttrpc: the connection is closed");
    // The agent gets `timeout` as the call's deadline; waiting a little longer here lets its
    // own answer (DEADLINE_EXCEEDED with the method's message) arrive first.
    const auto deadline = Clock::now() + timeout + std::chrono::milliseconds(500);
    const uint32_t sid = next_stream_;
    next_stream_ += 2;
    std::string frame = ttrpc::EncodeRequestFrame(
        sid, method, request,
        std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
    if (frame.size() - ttrpc::kHeaderSize > ttrpc::kMaxMessageSize) {
      return absl::ResourceExhaustedError(
          "ttrpc: the request exceeds the maximum message size of 4 MiB");
    }
    if (Status st = SendAll(frame, deadline); !st.ok()) {
      broken_ = true;  // part of the frame may be out
      return st;
    }
    for (;;) {
      while (std::optional<ttrpc::Frame> f = decoder_.Next()) {
        if (f->header.stream_id != sid || f->header.type != ttrpc::kResponse) continue;
        if (f->oversized) {
          return absl::ResourceExhaustedError(
              "ttrpc: the response exceeds the maximum message size of 4 MiB");
        }
        return ttrpc::ParseResponse(f->payload, response);
      }
      RETURN_IF_ERROR(Fail(WaitFor(fd_.get(), POLLIN, deadline)));
      char buf[64 * 1024];
      ssize_t n = recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return Fail(ErrnoError(errno, "ttrpc: recv"));
      if (n == 0) return Fail(absl::UnavailableError("ttrpc: the agent closed the connection"));
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

 private:
  Status SendAll(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
      ssize_t n = send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        RETURN_IF_ERROR(WaitFor(fd_.get(), POLLOUT, deadline));
      } else if (n < 0 && errno != EINTR) {
        return ErrnoError(errno, "ttrpc: send");
      }
    }
    return absl::OkStatus();
  }

  // A send cut short or a connection gone leaves the stream unusable for later calls;
  // a deadline does not (the late answer is skipped by its stream id).
  Status Fail(Status st) {
    if (!st.ok() && st.code() != absl::StatusCode::kDeadlineExceeded) broken_ = true;
    return st;
  }

  UniqueFd fd_;
  ttrpc::FrameDecoder decoder_;
  uint32_t next_stream_ = 1;
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<Transport> MakeTtrpcTransport(UniqueFd connected) {
  return std::make_unique<TtrpcTransport>(std::move(connected));
}

}  // namespace kata::ctl
