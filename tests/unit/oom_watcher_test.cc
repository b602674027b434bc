// The GetOOMEvent producer: a memory.events file (here a plain file in a temp dir, which
// inotify watches the same way) whose oom_kill grows queues one event per kill, in order.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "sandbox/oom_watcher.h"

using namespace kata;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/oom-watcher-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

void WriteEvents(const std::string& path, int kills) {
  std::ofstream(path, std::ios::trunc)
      << "low 0\nhigh 0\nmax 3\noom " << kills << "\noom_kill " << kills << "\n";
}

std::string Next(OomEvents& ev) {
  CallContext ctx("GetOOMEvent", CallContext::Clock::now() + 5s);
  auto got = ev.Wait(ctx);
  return got.ok() ? *got : std::string(got.status().message());
}

}  // namespace

TEST_CASE("oom_kill increases become OOM events, one per kill, in order") {
  TempDir tmp;
  std::string a = tmp.path + "/a.events", b = tmp.path + "/b.events";
  WriteEvents(a, 0);
  WriteEvents(b, 2);  // kills from before the watch are not reported
  OomEvents ev;
  OomWatcher w(&ev);
  REQUIRE(w.Start().ok());
  REQUIRE(w.Watch("a", a).ok());
  REQUIRE(w.Watch("b", b).ok());
  WriteEvents(a, 1);
  CHECK(Next(ev) == "a");
  WriteEvents(b, 4);  // two kills between polls: two events
  CHECK(Next(ev) == "b");
  CHECK(Next(ev) == "b");
  WriteEvents(a, 1);  // no change
  std::this_thread::sleep_for(200ms);
  CHECK(ev.pending() == 0);
}

TEST_CASE("Unwatch reads memory.events a last time, so no kill is lost at removal") {
  TempDir tmp;
  std::string a = tmp.path + "/a.events";
  WriteEvents(a, 0);
  OomEvents ev;
  OomWatcher w(&ev);
  REQUIRE(w.Start().ok());
  REQUIRE(w.Watch("a", a).ok());
  WriteEvents(a, 1);
  w.Unwatch("a");
  CHECK(Next(ev) == "a");
  WriteEvents(a, 5);
  std::this_thread::sleep_for(200ms);
  CHECK(ev.pending() == 0);
}
