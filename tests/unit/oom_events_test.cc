// GetOOMEvent's queue: order, one delivery per event, deadline and cancellation.
#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "sandbox/oom_events.h"

using kata::CallContext;
using kata::OomEvents;
using namespace std::chrono_literals;

TEST_CASE("OOM events queued before a poll are delivered one per call, oldest first") {
  OomEvents ev;
  ev.Push("a");
  ev.Push("b");
  ev.Push("c");
  CHECK(ev.pending() == 3);
  for (const char* want : {"a", "b", "c"}) {
    CallContext ctx("GetOOMEvent", CallContext::Clock::now() + 1s);
    auto got = ev.Wait(ctx);
    REQUIRE(got.ok());
    CHECK(*got == want);
  }
  CHECK(ev.pending() == 0);
}

TEST_CASE("an OOM poll waits for the next event") {
  OomEvents ev;
  CallContext ctx("GetOOMEvent");
  auto fut = std::async(std::launch::async, [&] { return ev.Wait(ctx); });
  CHECK(fut.wait_for(100ms) == std::future_status::timeout);
  ev.Push("late");
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  auto got = fut.get();
  REQUIRE(got.ok());
  CHECK(*got == "late");
}

TEST_CASE("an OOM poll ends at its deadline, and the event stays for the next poll") {
  OomEvents ev;
  CallContext ctx("GetOOMEvent", CallContext::Clock::now() + 200ms);
  auto t0 = std::chrono::steady_clock::now();
  auto got = ev.Wait(ctx);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(got.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(took >= 190ms);
  CHECK(took < 2s);
  ev.Push("kept");
  CallContext next("GetOOMEvent", CallContext::Clock::now() + 1s);
  CHECK(*ev.Wait(next) == "kept");
}

TEST_CASE("a cancelled OOM poll returns CANCELLED and takes no event") {
  OomEvents ev;
  CallContext ctx("GetOOMEvent");
  auto fut = std::async(std::launch::async, [&] { return ev.Wait(ctx); });
  std::this_thread::sleep_for(50ms);
  ctx.cancel_token().Cancel();
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get().status().code() == absl::StatusCode::kCancelled);
  ev.Push("x");
  CHECK(ev.pending() == 1);
}

TEST_CASE("a poll for a call cancelled before it waits returns at once") {
  // Cancellation racing with the start of the wait: the token is already cancelled when
  // Wait() registers its wake-up.
  OomEvents ev;
  CallContext ctx("GetOOMEvent");
  ctx.cancel_token().Cancel();
  auto fut = std::async(std::launch::async, [&] { return ev.Wait(ctx); });
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get().status().code() == absl::StatusCode::kCancelled);
}

TEST_CASE("cancelling many polls as they start never wedges the queue") {
  OomEvents ev;
  for (int i = 0; i < 200; i++) {
    CallContext ctx("GetOOMEvent");
    auto fut = std::async(std::launch::async, [&] { return ev.Wait(ctx); });
    if (i % 2) std::this_thread::yield();
    ctx.cancel_token().Cancel();
    REQUIRE(fut.wait_for(5s) == std::future_status::ready);
    CHECK(fut.get().status().code() == absl::StatusCode::kCancelled);
  }
  ev.Push("after");
  CallContext ctx("GetOOMEvent", CallContext::Clock::now() + 1s);
  CHECK(*ev.Wait(ctx) == "after");
}

TEST_CASE("two pollers each get a different event") {
  OomEvents ev;
  CallContext c1("GetOOMEvent", CallContext::Clock::now() + 5s),
      c2("GetOOMEvent", CallContext::Clock::now() + 5s);
  auto f1 = std::async(std::launch::async, [&] { return ev.Wait(c1); });
  auto f2 = std::async(std::launch::async, [&] { return ev.Wait(c2); });
  std::this_thread::sleep_for(50ms);
  ev.Push("one");
  ev.Push("two");
  auto r1 = f1.get(), r2 = f2.get();
  REQUIRE(r1.ok());
  REQUIRE(r2.ok());
  CHECK(*r1 != *r2);
  CHECK(((*r1 == "one" || *r1 == "two") && (*r2 == "one" || *r2 == "two")));
}

TEST_CASE("the OOM queue is bounded and drops the oldest") {
  OomEvents ev;
  for (size_t i = 0; i < OomEvents::kMaxPending + 5; i++) ev.Push(std::to_string(i));
  CHECK(ev.pending() == OomEvents::kMaxPending);
  CallContext ctx("GetOOMEvent", CallContext::Clock::now() + 1s);
  CHECK(*ev.Wait(ctx) == "5");
}
