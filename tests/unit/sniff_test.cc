#include <catch2/catch.hpp>
#include <string>

#include "rpc/sniff.h"

using kata::Protocol;
using kata::SniffProtocol;

TEST_CASE("protocol sniffing") {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  CHECK(SniffProtocol("") == Protocol::kNeedMore);
  CHECK(SniffProtocol("P") == Protocol::kNeedMore);
  CHECK(SniffProtocol(preface.substr(0, 10)) == Protocol::kNeedMore);
  CHECK(SniffProtocol(preface) == Protocol::kGrpc);
  CHECK(SniffProtocol(preface + "extra") == Protocol::kGrpc);
  CHECK(SniffProtocol(std::string("\0\0\0\x05", 4)) == Protocol::kTtrpc);
  CHECK(SniffProtocol("GET / HTTP/1.1\r\n") == Protocol::kUnknown);
  CHECK(SniffProtocol("PRX") == Protocol::kUnknown);
  CHECK(SniffProtocol("\x01garbage") == Protocol::kUnknown);
}
