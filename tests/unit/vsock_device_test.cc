// The vsock device against a fake guest driver (rings in a plain buffer) and real unix
// sockets on the host side: connection set-up, data both ways with headers and payloads split
// across descriptors in various ways, credit in both directions, shutdown and reset.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "hybrid.h"
#include "iov.h"
#include "vsock_device.h"
#include "vsock_fake_guest.h"

using namespace kata::vsock;
using kata::UniqueFd;
using kata::vsock::testing::FakeGuest;

namespace {

constexpr uint64_t kGuestCid = 3;
constexpr uint32_t kFirstHostPort = 1u << 30;

struct Pkt {
  Header h;
  std::string payload;
};

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

// Reads what is there now (non-blocking), up to max bytes.
std::string ReadAvailable(int fd, size_t max = 1 << 24) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    ssize_t n = recv(fd, buf, std::min(sizeof buf, max - out.size()), MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool AtEof(int fd) {
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
}

struct Fixture {
  FakeGuest g;
  std::vector<Virtqueue> queues{2};
  FakeGuest::Ring rx, tx;
  EventLoop loop;
  VsockOptions opts;
  std::string dir;
  std::unique_ptr<VsockDevice> dev;
  std::map<uint16_t, std::vector<std::pair<uint64_t, uint32_t>>> rx_bufs;  // head -> buffers
  std::vector<uint32_t> rx_layout = {44, 4096};
  uint32_t guest_buf_alloc = 256 * 1024;
  uint32_t guest_fwd_cnt = 0;

  explicit Fixture(uint64_t features = 0, VsockOptions o = {}) : opts(o) {
    REQUIRE(loop.Init().ok());
    char tmpl[] = "/tmp/vsock-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    const std::string uds = dir + "/vsock";
    dev = std::make_unique<VsockDevice>(&loop, opts,
                                        [uds](uint32_t port) { return DialHostPort(uds, port); });
    g.SetupQueue(&rx, &queues[0], 256, features);
    g.SetupQueue(&tx, &queues[1], 256, features);
    dev->Attach(&g.mem, &queues);
    loop.SetBatchHook([this] { dev->Flush(); });
  }
  ~Fixture() {
    dev.reset();
    std::filesystem::remove_all(dir);
  }

  void Pump(int rounds = 4) {
    for (int i = 0; i < rounds; ++i) REQUIRE(loop.RunOnce(0).ok());
  }

  void PostRx(int n) {
    for (int i = 0; i < n; ++i) {
      std::vector<FakeGuest::Seg> segs;
      for (uint32_t len : rx_layout) segs.emplace_back(len, true);
      std::vector<uint64_t> at;
      uint16_t head = g.AddChain(&rx, segs, false, &at);
      auto& bufs = rx_bufs[head];
      bufs.clear();
      for (size_t k = 0; k < at.size(); ++k) bufs.emplace_back(at[k], rx_layout[k]);
    }
    dev->QueueKicked(VsockDevice::kRxQueue);
  }

  // Takes the packets the device put in rx buffers (and gives the buffers back).
  std::vector<Pkt> Receive(bool repost = true) {
    std::vector<Pkt> out;
    int used = 0;
    for (auto [head, len] : g.TakeUsed(&rx)) {
      ++used;
      std::string bytes;
      for (auto [gpa, blen] : rx_bufs.at(head)) {
        for (uint32_t i = 0; i < blen && bytes.size() < len; ++i) {
          bytes.push_back(static_cast<char>(*g.Host(gpa + i)));
        }
      }
      REQUIRE(bytes.size() == len);
      REQUIRE(len >= kHeaderSize);
      Pkt p;
      p.h = DecodeHeader(reinterpret_cast<const uint8_t*>(bytes.data()));
      REQUIRE(len == kHeaderSize + p.h.len);  // the used length covers exactly the packet
      p.payload = bytes.substr(kHeaderSize);
      out.push_back(p);
    }
    if (repost && used > 0) PostRx(used);
    return out;
  }

  Header GuestHeader(uint16_t op, uint32_t guest_port, uint32_t host_port) const {
    Header h;
    h.src_cid = kGuestCid;
    h.dst_cid = kHostCid;
    h.src_port = guest_port;
    h.dst_port = host_port;
    h.type = kTypeStream;
    h.op = op;
    h.buf_alloc = guest_buf_alloc;
    h.fwd_cnt = guest_fwd_cnt;
    return h;
  }

  // Sends a packet on tx, header and payload laid out over buffers of the given lengths
  // (the rest in one more buffer).
  void Send(Header h, const std::string& payload = "", std::vector<uint32_t> split = {},
            bool indirect = false) {
    if (h.op == kOpRw) h.len = static_cast<uint32_t>(payload.size());
    std::string bytes(kHeaderSize, '\0');
    EncodeHeader(h, reinterpret_cast<uint8_t*>(bytes.data()));
    bytes += payload;
    std::vector<FakeGuest::Seg> segs;
    size_t covered = 0;
    for (uint32_t len : split) {
      if (covered >= bytes.size()) break;
      len = std::min<uint32_t>(len, static_cast<uint32_t>(bytes.size() - covered));
      segs.emplace_back(len, false);
      covered += len;
    }
    if (covered < bytes.size())
      segs.emplace_back(static_cast<uint32_t>(bytes.size() - covered), false);
    std::vector<uint64_t> at;
    g.AddChain(&tx, segs, indirect, &at);
    size_t off = 0;
    for (size_t i = 0; i < segs.size(); ++i) {
      g.Write(at[i], bytes.data() + off, segs[i].len);
      off += segs[i].len;
    }
    dev->QueueKicked(VsockDevice::kTxQueue);
    Pump();
  }

  struct Conn {
    UniqueFd client;
    uint32_t host_port = 0;
    uint32_t guest_port = 0;
  };

  // A host client connecting to guest port `port`, accepted by the guest.
  // sndbuf: a small send buffer for the device's end (a host reader that takes little).
  Conn Connect(uint32_t port, int sndbuf = 0) {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (sndbuf) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    Conn c;
    c.client.reset(sv[1]);
    c.guest_port = port;
    dev->ConnectToGuest(UniqueFd(sv[0]), port);
    Pump();
    auto pkts = Receive();
    REQUIRE(pkts.size() == 1);
    REQUIRE(pkts[0].h.op == kOpRequest);
    c.host_port = pkts[0].h.src_port;
    CHECK(ReadAvailable(c.client.get()).empty());  // no OK before the guest answers
    Send(GuestHeader(kOpResponse, port, c.host_port));
    CHECK(ReadAvailable(c.client.get()) == "OK " + std::to_string(c.host_port) + "\n");
    return c;
  }

  std::string ReceiveData(const Conn& c, size_t want, int max_rounds = 200) {
    std::string got;
    for (int i = 0; i < max_rounds && got.size() < want; ++i) {
      Pump(1);
      for (auto& p : Receive()) {
        REQUIRE(p.h.src_port == c.host_port);
        REQUIRE(p.h.dst_port == c.guest_port);
        if (p.h.op == kOpRw) {
          got += p.payload;
          guest_fwd_cnt += p.h.len;  // the guest application reads it at once
        }
      }
      // Tell the device what was read, as the guest driver does.
      if (got.size() < want) Send(GuestHeader(kOpCreditUpdate, c.guest_port, c.host_port));
    }
    return got;
  }
};

}  // namespace

TEST_CASE("vsock device: a host client is connected only after the guest's RESPONSE", "[vsock]") {
  Fixture f;
  f.PostRx(8);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  UniqueFd client(sv[1]);
  f.dev->ConnectToGuest(UniqueFd(sv[0]), 1024);
  f.Pump();
  auto pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  const Header& r = pkts[0].h;
  CHECK(r.op == kOpRequest);
  CHECK(r.src_cid == kHostCid);
  CHECK(r.dst_cid == kGuestCid);
  CHECK(r.dst_port == 1024);
  CHECK(r.src_port == kFirstHostPort);
  CHECK(r.type == kTypeStream);
  CHECK(r.buf_alloc == f.opts.buf_alloc);
  CHECK(r.len == 0);
  CHECK(ReadAvailable(client.get()).empty());
  f.Send(f.GuestHeader(kOpResponse, 1024, r.src_port));
  CHECK(ReadAvailable(client.get()) == "OK 1073741824\n");
  CHECK(f.dev->num_connections() == 1);
  // A second client gets the next host port.
  auto c2 = f.Connect(1024);
  CHECK(c2.host_port == kFirstHostPort + 1);
}

TEST_CASE("vsock device: a refused connection is closed without OK", "[vsock]") {
  Fixture f;
  f.PostRx(8);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  UniqueFd client(sv[1]);
  f.dev->ConnectToGuest(UniqueFd(sv[0]), 4444);
  f.Pump();
  auto pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  f.Send(f.GuestHeader(kOpRst, 4444, pkts[0].h.src_port));
  CHECK(AtEof(client.get()));
  CHECK(f.dev->num_connections() == 0);
  CHECK(f.Receive().empty());  // no answer to the guest's RST
}

TEST_CASE("vsock device: a guest that does not answer times the client out", "[vsock]") {
  VsockOptions o;
  o.connect_timeout_ms = 30;
  Fixture f(0, o);
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  UniqueFd client(sv[1]);
  SECTION("REQUEST sent: the guest is told with RST") {
    f.PostRx(8);
    f.dev->ConnectToGuest(UniqueFd(sv[0]), 1024);
    f.Pump();
    REQUIRE(f.Receive().size() == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    f.Pump();
    auto pkts = f.Receive();
    REQUIRE(pkts.size() == 1);
    CHECK(pkts[0].h.op == kOpRst);
  }
  SECTION("no rx buffer ever: nothing to tell") {
    f.dev->ConnectToGuest(UniqueFd(sv[0]), 1024);
    f.Pump();
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    f.Pump();
  }
  CHECK(AtEof(client.get()));
  CHECK(f.dev->num_connections() == 0);
}

TEST_CASE("vsock device: guest data reaches the host whatever the descriptor layout", "[vsock]") {
  const uint64_t features = GENERATE(0ull, kVirtioRingFIndirectDesc | kVirtioRingFEventIdx);
  Fixture f(features);
  f.PostRx(16);
  auto c = f.Connect(1024);
  const std::vector<std::vector<uint32_t>> layouts = {
      {},             // header and payload in one buffer
      {44},           // header, then payload (Linux 6.1's tx layout)
      {10, 34},       // header split in two
      {43, 2, 1000},  // payload starting inside the header's last buffer
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
       1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 7},
      {50, 0, 17, 4000},  // an empty buffer in the middle
  };
  std::string sent;
  for (size_t i = 0; i < layouts.size(); ++i) {
    for (bool indirect : {false, true}) {
      if (indirect && !(features & kVirtioRingFIndirectDesc)) continue;
      std::string payload = Pattern(3000 + 100 * i, static_cast<uint32_t>(i));
      f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), payload, layouts[i], indirect);
      sent += payload;
    }
  }
  // Also across the boundary of two guest memory regions.
  f.g.AllocNearBoundary(20);
  std::string payload = Pattern(100, 99);
  f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), payload);
  sent += payload;
  CHECK(ReadAvailable(c.client.get()) == sent);
  // Every tx buffer went back to the guest.
  CHECK(f.g.TakeUsed(&f.tx).size() == f.tx.avail_idx);
}

TEST_CASE("vsock device: host data reaches the guest whatever the rx buffer layout", "[vsock]") {
  Fixture f;
  const std::vector<std::vector<uint32_t>> layouts = {
      {44, 4096}, {4140}, {20, 24, 4096}, {7, 37, 100, 1000, 3}, {45}, {44, 1}};
  const auto layout = GENERATE_COPY(from_range(layouts));
  f.rx_layout = layout;
  f.PostRx(32);
  auto c = f.Connect(1024);
  const std::string data = Pattern(20000, 7);
  REQUIRE(write(c.client.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  uint32_t room = 0;
  for (uint32_t l : layout) room += l;
  room -= kHeaderSize;
  std::string got;
  for (int i = 0; i < 2000 && got.size() < data.size(); ++i) {
    f.Pump(1);
    for (auto& p : f.Receive()) {
      if (p.h.op != kOpRw) continue;
      CHECK(p.h.len <= room);
      got += p.payload;
    }
  }
  CHECK(got == data);
}

TEST_CASE("vsock device: host data never exceeds the guest's credit", "[vsock]") {
  Fixture f;
  f.guest_buf_alloc = 8192;
  f.PostRx(64);
  auto c = f.Connect(1024);
  const std::string data = Pattern(100000, 3);
  REQUIRE(write(c.client.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  std::string got;
  for (int i = 0; i < 20; ++i) {
    f.Pump(1);
    for (auto& p : f.Receive()) {
      if (p.h.op == kOpRw) got += p.payload;
    }
  }
  CHECK(got.size() == 8192);  // exactly the credit, and then nothing
  // The guest application reads 5000 bytes and the driver says so.
  f.guest_fwd_cnt = 5000;
  f.Send(f.GuestHeader(kOpCreditUpdate, c.guest_port, c.host_port));
  for (int i = 0; i < 20; ++i) {
    f.Pump(1);
    for (auto& p : f.Receive()) {
      if (p.h.op == kOpRw) got += p.payload;
    }
  }
  CHECK(got.size() == 8192 + 5000);
  CHECK(got == data.substr(0, got.size()));
  // A guest that grows its buffer gets more at once.
  f.guest_buf_alloc = 1 << 20;
  got += f.ReceiveData(c, data.size() - got.size());
  CHECK(got == data);
}

TEST_CASE("vsock device: a slow host reader holds the guest back by credit", "[vsock]") {
  VsockOptions o;
  o.buf_alloc = 64 * 1024;
  Fixture f(0, o);
  f.PostRx(64);
  auto c = f.Connect(1024, /*sndbuf=*/4096);
  const Connection* conn = f.dev->Find(c.host_port, c.guest_port);
  REQUIRE(conn != nullptr);
  // The host reader does not read: fill its socket, then our buffer, within credit.
  std::string sent;
  uint32_t last_fwd = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint32_t believed_free = o.buf_alloc - (static_cast<uint32_t>(sent.size()) - last_fwd);
    if (believed_free == 0) break;
    std::string p = Pattern(std::min<uint32_t>(believed_free, 16384), i);
    f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), p);
    sent += p;
    for (auto& pk : f.Receive()) {
      if (pk.h.op == kOpCreditUpdate) last_fwd = pk.h.fwd_cnt;
    }
  }
  // The socket took what it could, the rest waits, bounded by what we advertised.
  CHECK(conn->credit.Buffered() <= o.buf_alloc);
  CHECK(conn->out.size() == conn->credit.Buffered());
  CHECK(conn->credit.Buffered() > 0);
  CHECK(last_fwd == conn->credit.fwd_cnt);  // the guest heard about what was forwarded
  // The reader catches up: the rest flows, and the guest is told.
  std::string got;
  for (int i = 0; i < 100 && got.size() < sent.size(); ++i) {
    got += ReadAvailable(c.client.get());
    f.Pump(1);
  }
  CHECK(got == sent);
  CHECK(conn->credit.Buffered() == 0);
  // The guest heard enough to believe at least half the buffer is free again.
  for (auto& pk : f.Receive()) {
    if (pk.h.op == kOpCreditUpdate) last_fwd = pk.h.fwd_cnt;
  }
  CHECK(sent.size() - last_fwd <= o.buf_alloc / 2);
}

TEST_CASE("vsock device: a guest that overruns its credit is reset", "[vsock]") {
  VsockOptions o;
  o.buf_alloc = 16 * 1024;
  Fixture f(0, o);
  f.PostRx(16);
  auto c = f.Connect(1024, /*sndbuf=*/4096);
  const Connection* conn = f.dev->Find(c.host_port, c.guest_port);
  REQUIRE(conn != nullptr);
  // Within credit first: the socket takes a little, the rest is buffered.
  f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), Pattern(16 * 1024, 1));
  REQUIRE(f.dev->num_connections() == 1);
  CHECK(conn->credit.Buffered() > 0);
  // Then one packet more than the space left, with nothing read on the host.
  const uint32_t left = o.buf_alloc - conn->credit.Buffered();
  f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), Pattern(left + 1, 2));
  bool rst = false;
  for (auto& p : f.Receive()) rst |= p.h.op == kOpRst;
  CHECK(rst);
  CHECK(f.dev->num_connections() == 0);
}

TEST_CASE("vsock device: CREDIT_REQUEST is answered", "[vsock]") {
  Fixture f;
  f.PostRx(8);
  auto c = f.Connect(1024);
  f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), "hello");
  f.Receive();
  f.Send(f.GuestHeader(kOpCreditRequest, c.guest_port, c.host_port));
  auto pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  CHECK(pkts[0].h.op == kOpCreditUpdate);
  CHECK(pkts[0].h.fwd_cnt == 5);
  CHECK(pkts[0].h.buf_alloc == f.opts.buf_alloc);
}

TEST_CASE("vsock device: half-close and close in both directions", "[vsock]") {
  Fixture f;
  f.PostRx(16);
  auto c = f.Connect(1024);

  SECTION("guest SHUTDOWN(SEND): the host reads the data, then end of stream") {
    f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), "last words");
    Header sh = f.GuestHeader(kOpShutdown, c.guest_port, c.host_port);
    sh.flags = kShutdownSend;
    f.Send(sh);
    CHECK(ReadAvailable(c.client.get()) == "last words");
    CHECK(AtEof(c.client.get()));
    // The other direction still works.
    REQUIRE(write(c.client.get(), "reply", 5) == 5);
    CHECK(f.ReceiveData(c, 5) == "reply");
    // The host closes too: the guest gets SHUTDOWN(both), answers RST, all is gone.
    c.client.reset();
    f.Pump();
    auto pkts = f.Receive();
    REQUIRE(!pkts.empty());
    CHECK(pkts.back().h.op == kOpShutdown);
    CHECK(pkts.back().h.flags == kShutdownBoth);
    f.Send(f.GuestHeader(kOpRst, c.guest_port, c.host_port));
    CHECK(f.dev->num_connections() == 0);
  }
  SECTION("host shutdown(SHUT_WR): the guest gets SHUTDOWN(SEND) after the data") {
    REQUIRE(write(c.client.get(), "bye", 3) == 3);
    shutdown(c.client.get(), SHUT_WR);
    f.Pump();
    auto pkts = f.Receive();
    REQUIRE(pkts.size() == 2);
    CHECK(pkts[0].h.op == kOpRw);
    CHECK(pkts[0].payload == "bye");
    CHECK(pkts[1].h.op == kOpShutdown);
    CHECK(pkts[1].h.flags == kShutdownSend);
    // The guest still answers (the sink pattern), then closes: RST acknowledges.
    f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), "3 bytes");
    Header sh = f.GuestHeader(kOpShutdown, c.guest_port, c.host_port);
    sh.flags = kShutdownBoth;
    f.Send(sh);
    CHECK(ReadAvailable(c.client.get()) == "3 bytes");
    CHECK(AtEof(c.client.get()));
    pkts = f.Receive();
    REQUIRE(pkts.size() == 1);
    CHECK(pkts[0].h.op == kOpRst);
    CHECK(f.dev->num_connections() == 0);
  }
  SECTION("guest SHUTDOWN(both) while the host is slow: data first, then close and RST") {
    auto slow = f.Connect(1025, /*sndbuf=*/4096);
    std::swap(c, slow);
    std::string data = Pattern(60000, 5);
    f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), data);
    Header sh = f.GuestHeader(kOpShutdown, c.guest_port, c.host_port);
    sh.flags = kShutdownBoth;
    f.Send(sh);
    for (auto& p : f.Receive()) CHECK(p.h.op != kOpRst);  // not before the data is out
    std::string got;
    for (int i = 0; i < 100 && !AtEof(c.client.get()); ++i) {
      got += ReadAvailable(c.client.get());
      f.Pump(1);
    }
    got += ReadAvailable(c.client.get());
    CHECK(got == data);
    auto pkts = f.Receive();
    REQUIRE(!pkts.empty());
    CHECK(pkts.back().h.op == kOpRst);
    CHECK(f.dev->Find(c.host_port, c.guest_port) == nullptr);
  }
  SECTION("the host client dies: SHUTDOWN(both), then RST after the close timeout") {
    c.client.reset();
    f.Pump();
    auto pkts = f.Receive();
    REQUIRE(pkts.size() == 1);
    CHECK(pkts[0].h.op == kOpShutdown);
    CHECK(pkts[0].h.flags == kShutdownBoth);
    // The guest keeps quiet; guest data arriving meanwhile is dropped, not a problem.
    f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), "into the void");
    CHECK(f.dev->num_connections() == 1);
  }
  SECTION("guest RST: the client is closed at once") {
    f.Send(f.GuestHeader(kOpRst, c.guest_port, c.host_port));
    CHECK(AtEof(c.client.get()));
    CHECK(f.dev->num_connections() == 0);
    CHECK(f.Receive().empty());
  }
}

TEST_CASE("vsock device: the close timeout ends a connection the guest never closes", "[vsock]") {
  VsockOptions o;
  o.close_timeout_ms = 20;
  Fixture f(0, o);
  f.PostRx(8);
  auto c = f.Connect(1024);
  c.client.reset();
  f.Pump();
  REQUIRE(f.Receive().size() == 1);  // SHUTDOWN(both)
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  f.Pump();
  auto pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  CHECK(pkts[0].h.op == kOpRst);
  CHECK(f.dev->num_connections() == 0);
}

TEST_CASE("vsock device: guest-initiated connections go to <uds>_<port>", "[vsock]") {
  Fixture f;
  f.PostRx(16);
  // A listener on host port 5000.
  UniqueFd l(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  std::string path = f.dir + "/vsock_5000";
  memcpy(sun.sun_path, path.c_str(), path.size());
  REQUIRE(bind(l.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
  REQUIRE(listen(l.get(), 8) == 0);

  f.Send(f.GuestHeader(kOpRequest, 777, 5000));
  auto pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  CHECK(pkts[0].h.op == kOpResponse);
  CHECK(pkts[0].h.src_port == 5000);
  CHECK(pkts[0].h.dst_port == 777);
  UniqueFd server(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(server);
  f.Send(f.GuestHeader(kOpRw, 777, 5000), "from the guest");
  char buf[64] = {};
  REQUIRE(read(server.get(), buf, sizeof buf) == 14);
  CHECK(std::string(buf) == "from the guest");
  REQUIRE(write(server.get(), "from the host", 13) == 13);
  Fixture::Conn c;
  c.host_port = 5000;
  c.guest_port = 777;
  CHECK(f.ReceiveData(c, 13) == "from the host");

  // No listener on 5001: refused.
  f.Send(f.GuestHeader(kOpRequest, 778, 5001));
  pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  CHECK(pkts[0].h.op == kOpRst);
  CHECK(pkts[0].h.src_port == 5001);
  CHECK(pkts[0].h.dst_port == 778);
  CHECK(f.dev->num_connections() == 1);
}

TEST_CASE("vsock device: packets for unknown connections", "[vsock]") {
  Fixture f;
  f.PostRx(8);
  f.Send(f.GuestHeader(kOpRw, 1, 2), "x");
  auto pkts = f.Receive();
  REQUIRE(pkts.size() == 1);
  CHECK(pkts[0].h.op == kOpRst);
  CHECK(pkts[0].h.src_port == 2);
  CHECK(pkts[0].h.dst_port == 1);
  CHECK(pkts[0].h.dst_cid == kGuestCid);
  // An RST for nothing gets nothing; a packet claiming another source CID is dropped.
  f.Send(f.GuestHeader(kOpRst, 1, 2));
  Header spoof = f.GuestHeader(kOpRequest, 1, 2);
  spoof.src_cid = 42;
  f.Send(spoof);
  // Another destination than the host, or a SEQPACKET request: refused.
  Header other = f.GuestHeader(kOpRequest, 1, 2);
  other.dst_cid = 5;
  f.Send(other);
  Header seq = f.GuestHeader(kOpRequest, 1, 2);
  seq.type = 2;
  f.Send(seq);
  pkts = f.Receive();
  REQUIRE(pkts.size() == 2);
  CHECK(pkts[0].h.op == kOpRst);
  CHECK(pkts[1].h.op == kOpRst);
  CHECK(pkts[1].h.type == 2);
  // A malformed chain (shorter than a header) is returned and skipped.
  std::vector<uint64_t> at;
  f.g.AddChain(&f.tx, {{10, false}}, false, &at);
  f.dev->QueueKicked(VsockDevice::kTxQueue);
  f.Pump();
  CHECK(f.g.TakeUsed(&f.tx).size() == f.tx.avail_idx);
}

TEST_CASE("vsock device: host data waits for rx buffers", "[vsock]") {
  Fixture f;
  f.PostRx(2);
  auto c = f.Connect(1024);  // uses one buffer and reposts it
  const std::string data = Pattern(50000, 11);
  REQUIRE(write(c.client.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  f.Pump();
  std::string got;
  for (auto& p : f.Receive(/*repost=*/false)) got += p.payload;
  CHECK(got.size() == 2 * 4096);  // the two buffers there were
  f.Pump();
  CHECK(f.Receive(false).empty());
  // The guest adds buffers and kicks: the rest flows.
  f.PostRx(20);
  for (int i = 0; i < 50 && got.size() < data.size(); ++i) {
    f.Pump(1);
    for (auto& p : f.Receive()) got += p.payload;
  }
  CHECK(got == data);
}

TEST_CASE("vsock device: many connections are kept apart", "[vsock]") {
  Fixture f;
  f.PostRx(200);
  std::vector<Fixture::Conn> conns;
  for (int i = 0; i < 40; ++i) conns.push_back(f.Connect(2000 + i % 4));
  for (int i = 0; i < 40; ++i) {
    std::string msg = "to host " + std::to_string(i);
    f.Send(f.GuestHeader(kOpRw, conns[i].guest_port, conns[i].host_port), msg, {44});
    std::string back = "to guest " + std::to_string(i);
    REQUIRE(write(conns[i].client.get(), back.data(), back.size()) ==
            static_cast<ssize_t>(back.size()));
  }
  f.Pump();
  std::map<uint32_t, std::string> by_port;
  for (auto& p : f.Receive()) {
    CHECK(p.h.op == kOpRw);
    by_port[p.h.src_port] += p.payload;
  }
  for (int i = 0; i < 40; ++i) {
    CHECK(ReadAvailable(conns[i].client.get()) == "to host " + std::to_string(i));
    CHECK(by_port[conns[i].host_port] == "to guest " + std::to_string(i));
  }
  f.dev->Reset("test");
  CHECK(f.dev->num_connections() == 0);
  for (auto& c : conns) CHECK(AtEof(c.client.get()));
}

TEST_CASE("vsock device: config space carries the guest CID", "[vsock]") {
  VsockOptions o;
  o.guest_cid = 0x0102030405ull;
  Fixture f(0, o);
  auto cfg = f.dev->Config();
  REQUIRE(cfg.size() == 8);
  CHECK(cfg[0] == 0x05);
  CHECK(cfg[4] == 0x01);
  CHECK(cfg[7] == 0);
}

TEST_CASE("vsock device: random descriptor layouts both ways keep the streams exact", "[vsock]") {
  Fixture f(kVirtioRingFIndirectDesc | kVirtioRingFEventIdx);
  uint32_t rng = 12345;
  auto next = [&rng](uint32_t n) {
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) % n;
  };
  // rx buffers of random shapes: 1 to 4 pieces, the header cut anywhere.
  f.rx_layout = {};
  std::vector<std::vector<uint32_t>> shapes;
  for (int i = 0; i < 16; ++i) {
    std::vector<uint32_t> s;
    uint32_t total = 45 + next(3000);
    uint32_t pieces = 1 + next(4);
    for (uint32_t k = 0; k + 1 < pieces && total > 1; ++k) {
      uint32_t cut = 1 + next(std::min<uint32_t>(total - 1, 60));
      s.push_back(cut);
      total -= cut;
    }
    s.push_back(total);
    shapes.push_back(s);
  }
  // At most 48 buffers of at most 4 descriptors outstanding: the fake driver's 256
  // descriptors are never reused while in flight.
  for (int i = 0; i < 48; ++i) {
    f.rx_layout = shapes[i % shapes.size()];
    f.PostRx(1);
  }
  auto c = f.Connect(1024);
  const std::string up = Pattern(200000, 21);
  const std::string down = Pattern(150000, 22);
  std::string sent_down;
  size_t off = 0;
  std::string got_up;
  int round = 0;
  while ((off < up.size() || got_up.size() < up.size() || sent_down.size() < down.size()) &&
         round++ < 5000) {
    if (sent_down.size() < down.size()) {
      const size_t k = std::min<size_t>(1 + next(9000), down.size() - sent_down.size());
      std::vector<uint32_t> split;
      for (uint32_t p = next(4); p > 0; --p) split.push_back(1 + next(70));
      f.Send(f.GuestHeader(kOpRw, c.guest_port, c.host_port), down.substr(sent_down.size(), k),
             split, next(2) == 1);
      sent_down += down.substr(sent_down.size(), k);
    }
    if (off < up.size()) {
      const size_t k = std::min<size_t>(1 + next(20000), up.size() - off);
      ssize_t n = send(c.client.get(), up.data() + off, k, MSG_DONTWAIT);
      if (n > 0) off += static_cast<size_t>(n);
    }
    f.Pump(1);
    for (auto& p : f.Receive(/*repost=*/false)) {
      if (p.h.op == kOpRw) {
        got_up += p.payload;
        f.guest_fwd_cnt += p.h.len;
      }
    }
    // Re-post with random shapes and tell the device what the guest read.
    const int used = static_cast<int>(f.rx.avail_idx - f.g.UsedIdx(f.rx));
    for (int i = used; i < 48; ++i) {
      f.rx_layout = shapes[next(static_cast<uint32_t>(shapes.size()))];
      f.PostRx(1);
    }
    f.Send(f.GuestHeader(kOpCreditUpdate, c.guest_port, c.host_port));
  }
  std::string got_down = ReadAvailable(c.client.get());
  CHECK(got_up.size() == up.size());
  CHECK(got_up == up);
  CHECK(got_down == down);
}
