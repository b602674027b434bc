#include <linux/vm_sockets.h>

#include <catch2/catch.hpp>

#include "rpc/address.h"

using kata::Address;
using kata::ParseAddress;

TEST_CASE("vsock addresses") {
  auto a = ParseAddress("vsock://-1:1024");
  REQUIRE(a.ok());
  CHECK(a->kind == Address::Kind::kVsock);
  CHECK(a->cid == VMADDR_CID_ANY);
  CHECK(a->port == 1024);
  CHECK(a->ToString() == "vsock://-1:1024");

  a = ParseAddress("vsock://3:1025");
  REQUIRE(a.ok());
  CHECK(a->cid == 3);
  CHECK(a->port == 1025);

  CHECK(ParseAddress("vsock://3").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(!ParseAddress("vsock://x:1").ok());
  CHECK(!ParseAddress("vsock://3:").ok());
  CHECK(!ParseAddress("vsock://3:99999999999").ok());
}

TEST_CASE("unix addresses") {
  auto a = ParseAddress("unix:///run/agent.sock");
  REQUIRE(a.ok());
  CHECK(a->kind == Address::Kind::kUnix);
  CHECK(a->path == "/run/agent.sock");
  CHECK(!a->abstract);

  a = ParseAddress("unix://@kata");
  REQUIRE(a.ok());
  CHECK(a->abstract);
  CHECK(a->path == "kata");
  CHECK(a->ToString() == "unix://@kata");

  CHECK(!ParseAddress("unix://relative").ok());
  CHECK(!ParseAddress("unix://@").ok());
  CHECK(!ParseAddress("unix:///" + std::string(200, 'x')).ok());
}

TEST_CASE("hybrid vsock addresses") {
  auto a = ParseAddress("hvsock:///tmp/vm/vsock.sock:1024");
  REQUIRE(a.ok());
  CHECK(a->kind == Address::Kind::kHybridVsock);
  CHECK(a->path == "/tmp/vm/vsock.sock");
  CHECK(a->port == 1024);
  CHECK(!ParseAddress("hvsock://relative:1").ok());
  CHECK(!ParseAddress("hvsock:///x").ok());
}

TEST_CASE("unknown schemes are refused with a message naming the address") {
  auto a = ParseAddress("bogus://x");
  REQUIRE(!a.ok());
  CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(a.status().message()).find("bogus://x") != std::string::npos);
}
