// Which protocol a new connection speaks, decided from its first bytes (peeked, not read).
#pragma once

#include <string_view>

namespace kata {

enum class Protocol {
  kNeedMore,  // a valid prefix so far; wait for more bytes
  kGrpc,      // the HTTP/2 client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
  kTtrpc,     // a ttrpc frame: the big-endian length is < 4 MiB, so the first byte is 0
  kUnknown,   // anything else: close the connection
};

inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

Protocol SniffProtocol(std::string_view first_bytes);

}  // namespace kata
