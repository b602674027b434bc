#include "hybrid.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "util/log.h"

namespace kata::vsock {
namespace {

StatusOr<socklen_t> UnixAddr(const std::string& path, sockaddr_un* sun) {
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun->sun_path) {
    return absl::InvalidArgumentError(StrCat("bad unix socket path '", path, "'"));
  }
  memcpy(sun->sun_path, path.data(), path.size());
  return static_cast<socklen_t>(sizeof *sun);
}

}  // namespace

ConnectLine ParseConnectLine(std::string_view buf, uint32_t* port, size_t* line_len) {
  constexpr std::string_view kVerb = "CONNECT ";
  const size_t nl = buf.find('\n');
  if (nl == std::string_view::npos) {
    // Reject early what can no longer become a valid line.
    const size_t k = std::min(buf.size(), kVerb.size());
    if (buf.substr(0, k) != kVerb.substr(0, k)) return ConnectLine::kBad;
    return buf.size() >= kMaxConnectLine ? ConnectLine::kBad : ConnectLine::kIncomplete;
  }
  std::string_view line = buf.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.substr(0, kVerb.size()) != kVerb) return ConnectLine::kBad;
  std::string_view num = line.substr(kVerb.size());
  if (num.empty() || num.size() > 10) return ConnectLine::kBad;
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), p);
  if (ec != std::errc() || end != num.data() + num.size()) return ConnectLine::kBad;
  *port = p;
  *line_len = nl + 1;
  return ConnectLine::kOk;
}

StatusOr<UniqueFd> DialHostPort(const std::string& uds_path, uint32_t port) {
  const std::string path = StrCat(uds_path, "_", port);
  sockaddr_un sun;
  ASSIGN_OR_RETURN(socklen_t len, UnixAddr(path, &sun));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoError(errno, "socket");
  // A unix connect completes at once or fails (EAGAIN: the listener's backlog is full).
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) < 0) {
    return ErrnoErrorCode(absl::StatusCode::kUnavailable, errno, "connect ", path);
  }
  return fd;
}

HybridListener::HybridListener(EventLoop* loop, std::string path, OnConnect on_connect,
                               int handshake_timeout_ms, size_t max_pending)
    : loop_(loop),
      path_(std::move(path)),
      on_connect_(std::move(on_connect)),
      handshake_timeout_ms_(handshake_timeout_ms),
      max_pending_(max_pending) {}

HybridListener::~HybridListener() {
  for (auto& [id, p] : pending_) {
    if (p.handler) loop_->Remove(p.handler);
    if (p.timer) loop_->Cancel(p.timer);
  }
  if (listen_handler_) loop_->Remove(listen_handler_);
}

Status HybridListener::Start() {
  sockaddr_un sun;
  ASSIGN_OR_RETURN(socklen_t len, UnixAddr(path_, &sun));
  listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_) return ErrnoError(errno, "socket");
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path_.c_str());
  if (bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sun), len) < 0) {
    return ErrnoError(errno, "bind ", path_);
  }
  if (listen(listen_fd_.get(), 128) < 0) return ErrnoError(errno, "listen ", path_);
  ASSIGN_OR_RETURN(listen_handler_,
                   loop_->Add(listen_fd_.get(), EPOLLIN, [this](uint32_t) { OnAccept(); }));
  return absl::OkStatus();
}

void HybridListener::OnAccept() {
  for (;;) {
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log::Warn("accept on the hybrid vsock socket").Kv("error", ErrnoText(errno));
      }
      return;
    }
    if (pending_.size() >= max_pending_) {
      log::Warn("too many clients in the CONNECT handshake; dropping one");
      continue;
    }
    const uint64_t id = next_id_++;
    auto h = loop_->Add(fd.get(), EPOLLIN | EPOLLRDHUP | EPOLLET,
                        [this, id](uint32_t) { OnClientData(id); });
    if (!h.ok()) continue;
    Pending& p = pending_[id];
    p.fd = std::move(fd);
    p.handler = *h;
    p.timer = loop_->After(handshake_timeout_ms_, [this, id] {
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      it->second.timer = 0;
      log::Info("hybrid vsock client sent no CONNECT line in time");
      Drop(id);
    });
  }
}

void HybridListener::OnClientData(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  // Peek: the bytes after the line are stream data and must stay in the socket.
  char buf[kMaxConnectLine];
  ssize_t n;
  do {
    n = recv(p.fd.get(), buf, sizeof buf, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    Drop(id);
    return;
  }
  uint32_t port = 0;
  size_t line_len = 0;
  switch (ParseConnectLine(std::string_view(buf, static_cast<size_t>(n)), &port, &line_len)) {
    case ConnectLine::kIncomplete:
      return;  // the next bytes bring a new edge
    case ConnectLine::kBad:
      log::Info("bad hybrid vsock handshake; closing the client");
      // Consume what was peeked: closing with unread bytes would reset the client's side
      // instead of showing it a plain end of stream.
      (void)!recv(p.fd.get(), buf, static_cast<size_t>(n), MSG_DONTWAIT);
      Drop(id);
      return;
    case ConnectLine::kOk:
      break;
  }
  ssize_t r;
  do {
    r = recv(p.fd.get(), buf, line_len, 0);
  } while (r < 0 && errno == EINTR);
  UniqueFd fd = std::move(p.fd);
  Drop(id);
  if (r != static_cast<ssize_t>(line_len)) return;
  on_connect_(std::move(fd), port);
}

void HybridListener::Drop(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (it->second.handler) loop_->Remove(it->second.handler);
  if (it->second.timer) loop_->Cancel(it->second.timer);
  pending_.erase(it);
}

}  // namespace kata::vsock
