#include <catch2/catch.hpp>

#include "network/ip.h"

using namespace kata::net;

TEST_CASE("IP addresses parse and format in both families") {
  auto v4 = ParseIp("10.0.2.15", "address");
  REQUIRE(v4.ok());
  CHECK(v4->family == AF_INET);
  CHECK(FormatIp(*v4) == "10.0.2.15");
  auto v6 = ParseIp("FD00:0::1", "address");
  REQUIRE(v6.ok());
  CHECK(v6->family == AF_INET6);
  CHECK(FormatIp(*v6) == "fd00::1");
  CHECK(ParseIp("fe80::1", "a")->IsV6LinkLocal());
  CHECK_FALSE(ParseIp("fd00::1", "a")->IsV6LinkLocal());
}

TEST_CASE("a bad address is INVALID_ARGUMENT naming the field and the text") {
  for (const char* bad :
       {"", "10.0.2", "10.0.2.256", "10.0.2.15/24", "fd00:::1", "[::1]", "eth0"}) {
    auto r = ParseIp(bad, "interface address");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(r.status().message()).find("interface address '" + std::string(bad) + "'") ==
          0);
  }
}

TEST_CASE("masks: prefix lengths and contiguous IPv4 netmasks") {
  CHECK(*ParseMask("24", AF_INET, "mask") == 24);
  CHECK(*ParseMask("0", AF_INET, "mask") == 0);
  CHECK(*ParseMask("32", AF_INET, "mask") == 32);
  CHECK(*ParseMask("128", AF_INET6, "mask") == 128);
  CHECK(*ParseMask("255.255.255.0", AF_INET, "mask") == 24);
  CHECK(*ParseMask("255.255.240.0", AF_INET, "mask") == 20);
  CHECK(*ParseMask("255.255.255.255", AF_INET, "mask") == 32);
  CHECK(*ParseMask("0.0.0.0", AF_INET, "mask") == 0);
  for (const char* bad : {"33", "-1", "", "24 ", "abc", "255.0.255.0", "255.255.255.1", "1000"}) {
    auto r = ParseMask(bad, AF_INET, "mask of address 10.0.0.1");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(r.status().message()).find("mask of address 10.0.0.1 '") == 0);
  }
  CHECK_FALSE(ParseMask("129", AF_INET6, "m").ok());
  CHECK_FALSE(ParseMask("255.255.255.0", AF_INET6, "m").ok());
}

TEST_CASE("CIDR prefixes, host bits and broadcast") {
  auto p = ParseCidr("10.0.2.0/24", "dest");
  REQUIRE(p.ok());
  CHECK(p->len == 24);
  CHECK(FormatCidr(*p) == "10.0.2.0/24");
  CHECK_FALSE(HasHostBits(*p));
  auto h = ParseCidr("10.0.2.15/20", "dest");
  REQUIRE(h.ok());
  CHECK(HasHostBits(*h));
  CHECK(FormatCidr(Masked(*h)) == "10.0.0.0/20");
  CHECK(FormatIp(Broadcast(*h)) == "10.0.15.255");
  CHECK(FormatIp(Broadcast(*ParseCidr("192.168.1.7/30", "d"))) == "192.168.1.7");
  CHECK(ParseCidr("fd00::1", "d")->len == 128);
  CHECK(FormatCidr(Masked(*ParseCidr("fd00:1:2:3::5/62", "d"))) == "fd00:1:2::/62");
  for (const char* bad : {"10.0.2.0/33", "10.0.2.0/", "/24", "10.0.2.0/2x", "fd00::/129"}) {
    auto r = ParseCidr(bad, "route dest");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(r.status().message()).find("route dest '") == 0);
  }
}

TEST_CASE("MAC addresses") {
  auto m = ParseMac("52:54:00:AB:cd:0F", "hwAddr");
  REQUIRE(m.ok());
  CHECK(FormatHw(m->data(), m->size()) == "52:54:00:ab:cd:0f");
  CHECK(ParseMac("52-54-00-ab-cd-0f", "hwAddr").ok());
  for (const char* bad :
       {"", "52:54:00:ab:cd", "52:54:00:ab:cd:0g", "52:54:00:ab:cd:0f:00", "5254.00ab.cd0f"}) {
    auto r = ParseMac(bad, "interface hwAddr");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(FormatHw(nullptr, 0).empty());
}
