// The ttrpc server over a socketpair, with a test method table: concurrency, deadlines,
// cancellation on close, and containerd's answers to malformed input.
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "rpc/dispatcher.h"
#include "rpc/ttrpc_codec.h"
#include "rpc/ttrpc_server.h"

namespace tt = kata::ttrpc;
using kata::CallContext;
using kata::Dispatcher;
using kata::Status;
using kata::UniqueFd;
using namespace std::chrono_literals;

namespace {

// Blocking calls record how they ended, so tests can see cancellation server-side.
struct Blocker {
  std::mutex mu;
  std::condition_variable cv, ended_cv;
  std::vector<absl::StatusCode> ended;
  int started = 0;

  void Record(absl::StatusCode c) {
    std::lock_guard<std::mutex> lk(mu);
    ended.push_back(c);
    ended_cv.notify_all();
  }
  bool WaitEnded(size_t n, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lk(mu);
    return ended_cv.wait_for(lk, limit, [&] { return ended.size() >= n; });
  }
};

struct Fixture {
  Dispatcher d;
  Blocker blocker;
  std::unique_ptr<kata::TtrpcServer> server;

  Fixture() {
    d.AddRaw("t.T/Echo", [](CallContext&, std::string_view in, std::string* out) {
      *out = std::string(in);
      return absl::OkStatus();
    });
    d.AddRaw("t.T/Block", [this](CallContext& ctx, std::string_view, std::string*) {
      std::unique_lock<std::mutex> lk(blocker.mu);
      blocker.started++;
      Status st = ctx.Wait(lk, blocker.cv, [] { return false; });
      lk.unlock();
      blocker.Record(st.code());
      return st;
    });
    server = std::make_unique<kata::TtrpcServer>(d);
  }

  // A connected client socket served by the server.
  UniqueFd Connect() {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    server->AddConnection(UniqueFd(sv[1]));
    return UniqueFd(sv[0]);
  }
};

class Client {
 public:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  void SendRaw(const std::string& bytes) {
    REQUIRE(send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  void Request(uint32_t sid, const std::string& method, const std::string& payload,
               int64_t timeout_nano = 0) {
    SendRaw(tt::EncodeRequestFrame(sid, method, payload, timeout_nano));
  }

  // The next response frame: its stream id, status and payload. Fails the test on timeout.
  struct Resp {
    uint32_t sid;
    Status st;
    std::string payload;
  };
  Resp Next(std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (auto f = dec_.Next()) {
        Resp r{f->header.stream_id, absl::OkStatus(), {}};
        CHECK(f->header.type == tt::kResponse);
        r.st = tt::ParseResponse(f->payload, &r.payload);
        return r;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      struct pollfd p = {fd_.get(), POLLIN, 0};
      REQUIRE(poll(&p, 1, std::max(left, 0)) == 1);
      char buf[65536];
      ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
      REQUIRE(n > 0);
      dec_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  // True when the server closed the connection within the limit.
  bool ClosedByPeer(std::chrono::milliseconds limit = 5s) {
    struct pollfd p = {fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(limit.count())) != 1) return false;
    char c;
    return recv(fd_.get(), &c, 1, MSG_DONTWAIT) <= 0;
  }

  void Close() { fd_.reset(); }

 private:
  UniqueFd fd_;
  tt::FrameDecoder dec_;
};

bool WaitFor(std::function<bool()> pred, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

}  // namespace

TEST_CASE("ttrpc server: a call round trip") {
  Fixture fx;
  Client c(fx.Connect());
  c.Request(1, "t.T/Echo", "hello");
  auto r = c.Next();
  CHECK(r.sid == 1);
  CHECK(r.st.ok());
  CHECK(r.payload == "hello");
}

TEST_CASE("ttrpc server: a blocked call does not hold up others on its connection") {
  Fixture fx;
  Client c(fx.Connect());
  auto t0 = std::chrono::steady_clock::now();
  c.Request(1, "t.T/Block", "", std::chrono::nanoseconds(1s).count());
  for (uint32_t i = 0; i < 50; i++) c.Request(3 + 2 * i, "t.T/Echo", std::to_string(i));
  std::map<uint32_t, std::string> echoes;
  for (int i = 0; i < 50; i++) {
    auto r = c.Next();
    REQUIRE(r.sid != 1);  // every Echo answers before the blocked call
    CHECK(r.st.ok());
    echoes[r.sid] = r.payload;
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 900ms);
  REQUIRE(echoes.size() == 50);
  for (uint32_t i = 0; i < 50; i++) CHECK(echoes[3 + 2 * i] == std::to_string(i));
  auto blocked = c.Next();
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(blocked.sid == 1);
  CHECK(blocked.st.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(took >= 990ms);
  CHECK(took < 3s);
}

TEST_CASE("ttrpc server: closing the connection cancels its calls") {
  Fixture fx;
  Client c(fx.Connect());
  c.Request(1, "t.T/Block", "");
  c.Request(3, "t.T/Block", "");
  c.Request(5, "t.T/Echo", "x");
  CHECK(c.Next().sid == 5);
  REQUIRE(WaitFor([&] {
    std::lock_guard<std::mutex> lk(fx.blocker.mu);
    return fx.blocker.started == 2;
  }));
  REQUIRE(WaitFor([&] { return fx.server->connections() == 1; }));
  c.Close();
  REQUIRE(fx.blocker.WaitEnded(2, 5s));
  CHECK(fx.blocker.ended[0] == absl::StatusCode::kCancelled);
  CHECK(fx.blocker.ended[1] == absl::StatusCode::kCancelled);
  CHECK(WaitFor([&] { return fx.server->connections() == 0; }));
}

TEST_CASE("ttrpc server: malformed input gets containerd's answers, the connection stays") {
  Fixture fx;
  Client c(fx.Connect());

  SECTION("even stream id") {
    c.Request(2, "t.T/Echo", "x");
    auto r = c.Next();
    CHECK(r.sid == 2);
    CHECK(r.st.code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("stream id 0") {
    c.Request(0, "t.T/Echo", "x");
    auto r = c.Next();
    CHECK(r.sid == 0);
    CHECK(r.st.code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("oversized payload") {
    const uint32_t len = tt::kMaxMessageSize + 1;
    char h[tt::kHeaderSize];
    tt::EncodeHeader({len, 7, tt::kRequest, 0}, h);
    std::string big(h, sizeof h);
    big += std::string(len, '\0');
    std::thread writer([&] { c.SendRaw(big); });
    auto r = c.Next(10s);
    writer.join();
    CHECK(r.sid == 7);
    CHECK(r.st.code() == absl::StatusCode::kResourceExhausted);
    CHECK(std::string(r.st.message()).find("4194305") != std::string::npos);
  }
  SECTION("a payload that is not a ttrpc.Request") {
    c.SendRaw(tt::EncodeFrame(9, tt::kRequest, "\xff\xff\xff"));
    auto r = c.Next();
    CHECK(r.sid == 9);
    CHECK(r.st.code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("unknown method") {
    c.Request(11, "t.T/Nope", "");
    auto r = c.Next();
    CHECK(r.sid == 11);
    CHECK(r.st.code() == absl::StatusCode::kUnimplemented);
  }
  SECTION("frames of other types are ignored") {
    c.SendRaw(tt::EncodeFrame(13, tt::kData, "data"));
    c.SendRaw(tt::EncodeFrame(15, tt::kResponse, ""));
  }
  SECTION("a deadline already passed never runs the handler") {
    c.Request(17, "t.T/Block", "", -1);
    auto r = c.Next();
    CHECK(r.sid == 17);
    CHECK(r.st.code() == absl::StatusCode::kDeadlineExceeded);
    CHECK(fx.blocker.ended.empty());
  }

  c.Request(101, "t.T/Echo", "still here");
  auto r = c.Next();
  CHECK(r.sid == 101);
  CHECK(r.payload == "still here");
}

TEST_CASE("ttrpc server: a truncated frame then end of input closes only that connection") {
  Fixture fx;
  Client bad(fx.Connect());
  std::string frame = tt::EncodeRequestFrame(1, "t.T/Echo", "abcdef", 0);
  bad.SendRaw(frame.substr(0, frame.size() - 3));
  shutdown(bad.fd(), SHUT_WR);
  CHECK(bad.ClosedByPeer());

  Client good(fx.Connect());
  good.Request(1, "t.T/Echo", "ok");
  CHECK(good.Next().payload == "ok");
}

TEST_CASE("ttrpc server: many connections at once") {
  Fixture fx;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 32; i++) clients.push_back(std::make_unique<Client>(fx.Connect()));
  for (size_t i = 0; i < clients.size(); i++) clients[i]->Request(1, "t.T/Echo", std::to_string(i));
  for (size_t i = 0; i < clients.size(); i++)
    CHECK(clients[i]->Next().payload == std::to_string(i));
  CHECK(fx.server->connections() == 32);
  clients.clear();
  CHECK(WaitFor([&] { return fx.server->connections() == 0; }));
}

TEST_CASE(
    "ttrpc server: a connection with too much in progress is read no further until calls end") {
  Fixture fx;
  Client c(fx.Connect());
  // 17 blocked calls of almost 4 MiB each pass the 64 MiB per-connection limit.
  const std::string big(tt::kMaxMessageSize - 64, 'b');
  std::thread writer([&] {
    for (uint32_t i = 0; i < 17; i++)
      c.Request(1 + 2 * i, "t.T/Block", big, std::chrono::nanoseconds(1s).count());
    // Separately, so it is not in the same read as the last big frame (frames already read
    // when the limit is reached are still served).
    std::this_thread::sleep_for(200ms);
    c.Request(101, "t.T/Echo", "after");
  });
  auto t0 = std::chrono::steady_clock::now();
  auto first = c.Next(10s);
  writer.join();
  // Nothing is answered before the blocked calls time out: the Echo was not even read.
  CHECK(first.sid != 101);
  CHECK(first.st.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(std::chrono::steady_clock::now() - t0 >= 900ms);
  bool echoed = false;
  for (int i = 0; i < 17; i++) {
    auto r = c.Next(10s);
    if (r.sid == 101) {
      echoed = true;
      CHECK(r.payload == "after");
    }
  }
  CHECK(echoed);
}
