#include "rpc/address.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>

#include "util/strcat.h"

namespace kata {
namespace {

bool ParseU32(std::string_view s, uint32_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status WaitFd(int fd, short events, int timeout_ms, std::string_view what) {
  struct pollfd p = {fd, events, 0};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r > 0) return absl::OkStatus();
    if (r == 0) return absl::DeadlineExceededError(StrCat(what, ": timed out"));
    if (errno != EINTR) return ErrnoError(errno, what);
  }
}

}  // namespace

std::string Address::ToString() const {
  switch (kind) {
    case Kind::kVsock:
      return StrCat("vsock://", cid == VMADDR_CID_ANY ? std::string("-1") : std::to_string(cid),
                          ":", port);
    case Kind::kUnix:
      return StrCat("unix://", abstract ? "@" : "", path);
    case Kind::kHybridVsock:
      return StrCat("hvsock://", path, ":", port);
  }
  return "";
}

StatusOr<Address> ParseAddress(std::string_view s) {
  Address a;
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("invalid address '", s, "': ", why));
  };
  if (s.rfind("vsock://", 0) == 0) {
    std::string_view rest = s.substr(8);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("expected vsock://CID:PORT");
    std::string_view cid = rest.substr(0, colon), port = rest.substr(colon + 1);
    a.kind = Address::Kind::kVsock;
    if (cid == "-1") {
      a.cid = VMADDR_CID_ANY;
    } else if (!ParseU32(cid, &a.cid)) {
      return bad("CID is not a number");
    }
    if (!ParseU32(port, &a.port)) return bad("port is not a number");
    return a;
  }
  if (s.rfind("unix://", 0) == 0) {
    std::string_view rest = s.substr(7);
    a.kind = Address::Kind::kUnix;
    if (!rest.empty() && rest[0] == '@') {
      a.abstract = true;
      rest.remove_prefix(1);
      if (rest.empty()) return bad("empty abstract socket name");
    } else if (rest.empty() || rest[0] != '/') {
      return bad("unix socket path must be absolute");
    }
    if (rest.size() >= sizeof(sockaddr_un::sun_path) - 1) return bad("socket path too long");
    a.path = std::string(rest);
    return a;
  }
  if (s.rfind("hvsock://", 0) == 0) {
    std::string_view rest = s.substr(9);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("expected hvsock:///path/to/uds:PORT");
    a.kind = Address::Kind::kHybridVsock;
    a.path = std::string(rest.substr(0, colon));
    if (a.path.empty() || a.path[0] != '/') return bad("unix socket path must be absolute");
    if (a.path.size() >= sizeof(sockaddr_un::sun_path) - 1) return bad("socket path too long");
    if (!ParseU32(rest.substr(colon + 1), &a.port)) return bad("port is not a number");
    return a;
  }
  return bad("unknown scheme (expected vsock://, unix:// or hvsock://)");
}

StatusOr<socklen_t> MakeUnixSockaddr(const Address& a, sockaddr_un* sun) {
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (a.path.size() >= sizeof(sun->sun_path) - 1) {
    return absl::InvalidArgumentError(StrCat("socket path too long: ", a.path));
  }
  if (a.abstract) {
    memcpy(sun->sun_path + 1, a.path.data(), a.path.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + a.path.size());
  }
  memcpy(sun->sun_path, a.path.data(), a.path.size());
  return static_cast<socklen_t>(sizeof *sun);
}

StatusOr<UniqueFd> Listen(const Address& a, int backlog) {
  if (a.kind == Address::Kind::kHybridVsock) {
    return absl::InvalidArgumentError("cannot listen on a hybrid vsock address");
  }
  UniqueFd fd;
  if (a.kind == Address::Kind::kVsock) {
    fd.reset(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return ErrnoError(errno, "socket(AF_VSOCK)");
    struct sockaddr_vm svm = {};
    svm.svm_family = AF_VSOCK;
    svm.svm_cid = a.cid;
    svm.svm_port = a.port;
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&svm), sizeof svm) < 0) {
      return ErrnoError(errno, "bind ", a.ToString());
    }
  } else {
    fd.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return ErrnoError(errno, "socket(AF_UNIX)");
    sockaddr_un sun;
    ASSIGN_OR_RETURN(socklen_t len, MakeUnixSockaddr(a, &sun));
    if (!a.abstract) {
      struct stat st;
      if (lstat(a.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(a.path.c_str());
    }
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) < 0) {
      return ErrnoError(errno, "bind ", a.ToString());
    }
  }
  if (listen(fd.get(), backlog) < 0) return ErrnoError(errno, "listen ", a.ToString());
  return fd;
}

StatusOr<UniqueFd> Dial(const Address& a, int timeout_ms) {
  UniqueFd fd;
  if (a.kind == Address::Kind::kVsock) {
    fd.reset(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return ErrnoError(errno, "socket(AF_VSOCK)");
    struct sockaddr_vm svm = {};
    svm.svm_family = AF_VSOCK;
    svm.svm_cid = a.cid;
    svm.svm_port = a.port;
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&svm), sizeof svm) < 0) {
      return ErrnoErrorCode(absl::StatusCode::kUnavailable, errno, "connect ", a.ToString());
    }
    return fd;
  }
  fd.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError(errno, "socket(AF_UNIX)");
  sockaddr_un sun;
  ASSIGN_OR_RETURN(socklen_t len, MakeUnixSockaddr(a, &sun));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) < 0) {
    return ErrnoErrorCode(absl::StatusCode::kUnavailable, errno, "connect ", a.ToString());
  }
  if (a.kind == Address::Kind::kUnix) return fd;

  // Hybrid vsock: the backend answers "OK <hostport>\n" once the guest accepted, or closes
  // the connection. Read byte by byte so nothing after the line is consumed.
  std::string req = StrCat("CONNECT ", a.port, "\n");
  if (write(fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    return ErrnoErrorCode(absl::StatusCode::kUnavailable, errno, "hybrid vsock CONNECT to ", a.ToString());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string line;
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) left = 0;
    RETURN_IF_ERROR(WaitFd(fd.get(), POLLIN, left, StrCat("hybrid vsock handshake with ", a.ToString())));
    char c;
    ssize_t n = read(fd.get(), &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoErrorCode(absl::StatusCode::kUnavailable, errno, "hybrid vsock handshake with ", a.ToString());
    if (n == 0) {
      return absl::UnavailableError(StrCat("hybrid vsock ", a.ToString(),
                                                 ": connection refused by the guest (no listener on port ", a.port, ")"));
    }
    if (c == '\n') break;
    line.push_back(c);
    if (line.size() > 128) return absl::UnavailableError("hybrid vsock: overlong handshake reply");
  }
  if (line.rfind("OK", 0) != 0) {
    return absl::UnavailableError(StrCat("hybrid vsock ", a.ToString(), ": unexpected reply '", line, "'"));
  }
  return fd;
}

}  // namespace kata
