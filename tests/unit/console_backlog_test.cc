#include <catch2/catch.hpp>
#include <string>

#include "init/log_port.h"

using kata::LogBacklog;

namespace {
std::string L(int i) { return "{\"n\":" + std::to_string(i) + "}\n"; }
}  // namespace

TEST_CASE("log backlog keeps lines in order while within bounds") {
  LogBacklog b(10, 1 << 20);
  for (int i = 0; i < 5; i++) b.Push(L(i));
  CHECK(b.lines() == 5);
  CHECK(b.TakeDropped() == 0);
  auto lines = b.Take();
  REQUIRE(lines.size() == 5);
  for (int i = 0; i < 5; i++) CHECK(lines[i] == L(i));
  CHECK(b.lines() == 0);
  CHECK(b.bytes() == 0);
}

TEST_CASE("log backlog drops the oldest lines past the line bound and counts them") {
  LogBacklog b(3, 1 << 20);
  for (int i = 0; i < 10; i++) b.Push(L(i));
  CHECK(b.lines() == 3);
  CHECK(b.TakeDropped() == 7);
  CHECK(b.TakeDropped() == 0);  // the counter restarts after each report
  CHECK(b.dropped_total() == 7);
  auto lines = b.Take();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == L(7));
  CHECK(lines[2] == L(9));
  b.Push(L(10));
  b.Push(L(11));
  b.Push(L(12));
  b.Push(L(13));
  CHECK(b.TakeDropped() == 1);
  CHECK(b.dropped_total() == 8);
}

TEST_CASE("log backlog drops the oldest lines past the byte bound") {
  LogBacklog b(1000, 30);
  b.Push(std::string(10, 'a'));
  b.Push(std::string(10, 'b'));
  b.Push(std::string(10, 'c'));
  CHECK(b.bytes() == 30);
  CHECK(b.TakeDropped() == 0);
  b.Push(std::string(15, 'd'));  // needs 15 bytes: 'a' and 'b' go
  CHECK(b.lines() == 2);
  CHECK(b.bytes() == 25);
  CHECK(b.TakeDropped() == 2);
  auto lines = b.Take();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == std::string(10, 'c'));
  CHECK(lines[1] == std::string(15, 'd'));
}

TEST_CASE("a line larger than the whole backlog is dropped, not the backlog") {
  LogBacklog b(10, 30);
  b.Push("kept\n");
  b.Push(std::string(31, 'x'));
  CHECK(b.lines() == 1);
  CHECK(b.TakeDropped() == 1);
  CHECK(b.Take()[0] == "kept\n");
}

TEST_CASE("log backlog Take hands out at most max_bytes, but always one line") {
  LogBacklog b(100, 1000);
  for (int i = 0; i < 4; i++) b.Push(std::string(10, static_cast<char>('a' + i)));
  auto first = b.Take(25);
  CHECK(first.size() == 2);
  auto one = b.Take(5);  // smaller than a line: still one, so a reader always progresses
  REQUIRE(one.size() == 1);
  CHECK(one[0] == std::string(10, 'c'));
  CHECK(b.lines() == 1);
  CHECK(b.bytes() == 10);
  CHECK(b.Take(0).size() == 1);
  CHECK(b.Take().empty());
}

TEST_CASE("log port notice lines are JSON in the agent's log format") {
  std::string s = kata::LogPortNotice("info", "log port: client connected",
                                      {{"backlog_lines", 12}, {"dropped_lines", 3}});
  CHECK(s.rfind("{\"time\":\"", 0) == 0);
  CHECK(s.back() == '\n');
  CHECK(s.find("\"level\":\"info\"") != std::string::npos);
  CHECK(
      s.find("\"msg\":\"log port: client connected\",\"backlog_lines\":12,\"dropped_lines\":3}") !=
      std::string::npos);
  CHECK(s.find('\n') == s.size() - 1);
}
