#include <catch2/catch.hpp>

#include "network/stats.h"

using namespace kata::net;

TEST_CASE("/proc/net/dev parses into per-interface counters") {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:    1234      12    0    0    0     0          0         0     1234      12    0    "
      "0    0     0       0          0\n"
      "  eth0:18446744073709551615 7 1 2 0 0 0 3 900 8 4 5 0 0 0 0\n"
      "veth-long-name:0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
  auto s = ParseProcNetDev(text);
  REQUIRE(s.ok());
  REQUIRE(s->size() == 3);
  CHECK((*s)[0].name == "lo");
  CHECK((*s)[0].rx_bytes == 1234);
  const NetStats& e = (*s)[1];
  CHECK(e.name == "eth0");
  CHECK(e.rx_bytes == 18446744073709551615ull);
  CHECK(e.rx_packets == 7);
  CHECK(e.rx_errors == 1);
  CHECK(e.rx_dropped == 2);
  CHECK(e.tx_bytes == 900);
  CHECK(e.tx_packets == 8);
  CHECK(e.tx_errors == 4);
  CHECK(e.tx_dropped == 5);
  CHECK((*s)[2].name == "veth-long-name");
}

TEST_CASE("/proc/net/dev: a short or garbled line is an error") {
  CHECK_FALSE(ParseProcNetDev("h1\nh2\n  eth0: 1 2 3\n").ok());
  CHECK_FALSE(ParseProcNetDev("h1\nh2\n  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n").ok());
  CHECK(ParseProcNetDev("h1\nh2\n").value().empty());
}

TEST_CASE("the agent's own network namespace has counters, lo among them") {
  auto s = ReadNetStats();
  REQUIRE(s.ok());
  bool lo = false;
  for (const auto& n : *s) lo |= n.name == "lo";
  CHECK(lo);
}
