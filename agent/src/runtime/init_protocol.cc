#include "runtime/init_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "runtime/errors.h"

namespace kata {
namespace {

uint32_t LoadLe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

// recvmsg that collects any fds (close-on-exec) into *fds.
ssize_t RecvWithFds(int sock, char* buf, size_t len, std::vector<UniqueFd>* fds) {
  struct iovec iov = {buf, len};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);
    }
  }
  return n;
}

}  // namespace

std::string EncodeInitFrame(const kata::init::InitMessage& msg) {
  std::string body = msg.SerializeAsString();
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string out(4, '\0');
  out[0] = static_cast<char>(n & 0xff);
  out[1] = static_cast<char>((n >> 8) & 0xff);
  out[2] = static_cast<char>((n >> 16) & 0xff);
  out[3] = static_cast<char>((n >> 24) & 0xff);
  return out + body;
}

Status SendInitMessage(int sock, const kata::init::InitMessage& msg, int fd_to_pass) {
  std::string frame = EncodeInitFrame(msg);
  if (frame.size() > kMaxInitFrame + 4) return absl::InvalidArgumentError("init message too large");
  size_t off = 0;
  bool fd_sent = fd_to_pass < 0;
  while (off < frame.size()) {
    struct iovec iov = {frame.data() + off, frame.size() - off};
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
    if (!fd_sent) {
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof cbuf;
      struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
    }
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {sock, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (n < 0) return SysError(errno, "send to the set-up socket");
    fd_sent = true;
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

StatusOr<kata::init::InitMessage> RecvInitMessage(int sock, UniqueFd* fd_out) {
  std::vector<UniqueFd> fds;
  auto read_exact = [&](char* p, size_t n, bool* eof) -> Status {
    size_t got = 0;
    while (got < n) {
      ssize_t r = RecvWithFds(sock, p + got, n - got, &fds);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return SysError(errno, "read from the set-up socket");
      if (r == 0) {
        *eof = true;
        return got == 0 ? absl::OkStatus() : absl::DataLossError("set-up socket: truncated frame");
      }
      got += static_cast<size_t>(r);
    }
    return absl::OkStatus();
  };
  char hdr[4];
  bool eof = false;
  RETURN_IF_ERROR(read_exact(hdr, 4, &eof));
  if (eof) return absl::NotFoundError("set-up socket closed");
  uint32_t len = LoadLe32(hdr);
  if (len > kMaxInitFrame)
    return absl::DataLossError(StrCat("set-up socket: frame of ", len, " bytes"));
  std::string body(len, '\0');
  RETURN_IF_ERROR(read_exact(body.data(), len, &eof));
  if (eof && len > 0) return absl::DataLossError("set-up socket: truncated frame");
  kata::init::InitMessage msg;
  if (!msg.ParseFromString(body)) return absl::DataLossError("set-up socket: malformed message");
  if (fd_out && !fds.empty()) *fd_out = std::move(fds.front());
  return msg;
}

StatusOr<FrameReader::Fill> FrameReader::FillFrom(int sock) {
  char buf[65536];
  for (;;) {
    ssize_t r = RecvWithFds(sock, buf, sizeof buf, &fds_);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Fill::kWouldBlock;
    if (r < 0) return SysError(errno, "read from the set-up socket");
    if (r == 0) return Fill::kEnd;
    buf_.append(buf, static_cast<size_t>(r));
    if (buf_.size() > kMaxInitFrame + 4)
      return absl::DataLossError("set-up socket: frame too large");
    return Fill::kData;
  }
}

StatusOr<bool> FrameReader::Next(kata::init::InitMessage* msg, UniqueFd* fd) {
  if (buf_.size() < 4) return false;
  uint32_t len = LoadLe32(buf_.data());
  if (len > kMaxInitFrame)
    return absl::DataLossError(StrCat("set-up socket: frame of ", len, " bytes"));
  if (buf_.size() < 4 + static_cast<size_t>(len)) return false;
  if (!msg->ParseFromArray(buf_.data() + 4, static_cast<int>(len))) {
    return absl::DataLossError("set-up socket: malformed message");
  }
  buf_.erase(0, 4 + len);
  if ((msg->has_pid() || msg->has_console()) && !fds_.empty()) {  // the frames sent with an fd
    *fd = std::move(fds_.front());
    fds_.erase(fds_.begin());
  }
  return true;
}

}  // namespace kata
