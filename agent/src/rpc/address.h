// Endpoint addresses, as the agent and agent-ctl accept them:
//   vsock://CID:PORT        AF_VSOCK (CID -1 = any; the guest side listens on it)
//   unix:///abs/path        a unix socket path
//   unix://@name            an abstract unix socket
//   hvsock:///abs/uds:PORT  hybrid vsock (client side): a unix socket served by a vsock
//                           backend, "CONNECT PORT\n" -> "OK ...\n", then raw bytes
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct Address {
  enum class Kind { kVsock, kUnix, kHybridVsock };
  Kind kind = Kind::kUnix;
  uint32_t cid = 0;   // vsock
  uint32_t port = 0;  // vsock, hybrid vsock
  std::string path;   // unix, hybrid vsock (without the leading '@' for abstract)
  bool abstract = false;

  std::string ToString() const;
};

StatusOr<Address> ParseAddress(std::string_view s);

// Fills a sockaddr_un for a unix or hybrid-vsock address; returns its length.
StatusOr<socklen_t> MakeUnixSockaddr(const Address& a, sockaddr_un* sun);

// A listening socket (close-on-exec, non-blocking) for a vsock or unix address.
// A stale unix socket file at the path is replaced.
StatusOr<UniqueFd> Listen(const Address& a, int backlog = 128);

// A connected stream socket (blocking, close-on-exec). For hybrid vsock this performs
// the CONNECT handshake and reads exactly the "OK ...\n" line, nothing past it.
StatusOr<UniqueFd> Dial(const Address& a, int timeout_ms = 10000);

}  // namespace kata
