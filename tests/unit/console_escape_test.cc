#include <catch2/catch.hpp>
#include <string>

#include "../../tools/agent-ctl/console_escape.h"

using kata::ctl::EscapeParser;
using Event = EscapeParser::Event;

namespace {

// Feeds everything, collecting what would be sent and the events, in order.
struct Run {
  std::string sent;
  std::vector<Event> events;
};
Run FeedAll(EscapeParser& p, std::string_view in) {
  Run r;
  while (!in.empty()) {
    size_t used = 0;
    Event ev = p.Feed(in, &r.sent, &used);
    REQUIRE(used > 0);
    in.remove_prefix(used);
    if (ev != Event::kNone) r.events.push_back(ev);
  }
  return r;
}

}  // namespace

TEST_CASE("escape: ~. at the very start leaves") {
  EscapeParser p;
  size_t used = 0;
  std::string out;
  CHECK(p.Feed("~.rest", &out, &used) == Event::kDisconnect);
  CHECK(used == 2);
  CHECK(out.empty());
}

TEST_CASE("escape: ~. after Enter leaves, and what came before is sent") {
  EscapeParser p;
  size_t used = 0;
  std::string out;
  CHECK(p.Feed("ls\r~.", &out, &used) == Event::kDisconnect);
  CHECK(out == "ls\r");
  CHECK(used == 5);
}

TEST_CASE("escape: ~ in the middle of a line is an ordinary character") {
  EscapeParser p;
  Run r = FeedAll(p, "cd ~.\r");
  CHECK(r.sent == "cd ~.\r");
  CHECK(r.events.empty());
}

TEST_CASE("escape: ~~ sends one ~ and the line is no longer at its start") {
  EscapeParser p;
  Run r = FeedAll(p, "~~.");
  CHECK(r.sent == "~.");
  CHECK(r.events.empty());
}

TEST_CASE("escape: ~ and another character sends both") {
  EscapeParser p;
  Run r = FeedAll(p, "~/bin\r");
  CHECK(r.sent == "~/bin\r");
  CHECK(r.events.empty());
}

TEST_CASE("escape: ~? asks for help and stays at the start of a line") {
  EscapeParser p;
  Run r = FeedAll(p, "~?~.");
  CHECK(r.sent.empty());
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0] == Event::kHelp);
  CHECK(r.events[1] == Event::kDisconnect);
}

TEST_CASE("escape: ~^Z suspends") {
  EscapeParser p;
  Run r = FeedAll(p, "\n~\x1a");
  CHECK(r.sent == "\n");
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0] == Event::kSuspend);
}

TEST_CASE("escape: split across reads") {
  EscapeParser p;
  std::string out;
  size_t used = 0;
  CHECK(p.Feed("echo\r", &out, &used) == Event::kNone);
  CHECK(p.Feed("~", &out, &used) == Event::kNone);
  CHECK(out == "echo\r");  // the ~ is held until the next byte says what it is
  CHECK(p.Feed(".", &out, &used) == Event::kDisconnect);
}

TEST_CASE("escape: ^C and other control bytes pass through untouched") {
  EscapeParser p;
  Run r = FeedAll(p, std::string("sleep 100\r\x03", 11));
  CHECK(r.sent == std::string("sleep 100\r\x03", 11));
}

TEST_CASE("escape: another escape character, or none") {
  EscapeParser hash('#');
  Run r = FeedAll(hash, "~.\r#.");
  CHECK(r.sent == "~.\r");
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0] == Event::kDisconnect);

  EscapeParser none(-1);
  Run n = FeedAll(none, "~.\r~.");
  CHECK(n.sent == "~.\r~.");
  CHECK(n.events.empty());
}
