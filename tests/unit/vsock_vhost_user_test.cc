// The vhost-user back-end's message handling, driven over a socketpair the way QEMU drives it:
// negotiation, memory tables (and replacing one while the rings run), vring set-up, config.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "vhost_user.h"

using namespace kata::vsock;
using kata::UniqueFd;

namespace {

class RecordingDevice : public VirtioDevice {
 public:
  uint64_t DeviceFeatures() const override { return 0; }
  size_t NumQueues() const override { return 2; }
  std::vector<uint8_t> Config() const override { return {3, 0, 0, 0, 0, 0, 0, 0}; }
  void Attach(const GuestMemory* mem, std::vector<Virtqueue>* queues) override {
    mem_ = mem;
    queues_ = queues;
  }
  void QueueKicked(size_t index) override { kicks.push_back(index); }
  void QueuesChanged() override { ++changes; }
  void Reset(std::string_view why) override { resets.emplace_back(why); }

  const GuestMemory* mem_ = nullptr;
  std::vector<Virtqueue>* queues_ = nullptr;
  std::vector<size_t> kicks;
  int changes = 0;
  std::vector<std::string> resets;
};

struct Front {
  EventLoop loop;
  RecordingDevice dev;
  UniqueFd ours, theirs;  // ours: the front-end's end
  std::unique_ptr<VhostUserSession> session;

  explicit Front(VhostUserOptions opts = {}) {
    REQUIRE(loop.Init().ok());
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    ours.reset(sv[0]);
    theirs.reset(sv[1]);
    session = std::make_unique<VhostUserSession>(&loop, &dev, opts);
  }

  // Sends a request through the socket, lets the session handle it, returns the reply if
  // the session sent one.
  std::optional<VhostUserMsg> Call(uint32_t request, std::vector<uint8_t> payload = {},
                                   std::vector<int> fds = {}, bool need_reply = false) {
    REQUIRE(WriteVhostUserMsg(ours.get(), request,
                              kVhostUserVersion | (need_reply ? kFlagNeedReply : 0), payload.data(),
                              static_cast<uint32_t>(payload.size()), fds)
                .ok());
    VhostUserMsg m;
    auto more = ReadVhostUserMsg(theirs.get(), &m);
    REQUIRE(more.ok());
    REQUIRE(*more);
    last_status = session->Handle(m, theirs.get());
    VhostUserMsg reply;
    char c;
    if (recv(ours.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) != 1) return std::nullopt;
    auto r = ReadVhostUserMsg(ours.get(), &reply);
    REQUIRE(r.ok());
    REQUIRE(reply.request == request);
    REQUIRE(reply.flags == (kVhostUserVersion | kFlagReply));
    return reply;
  }
  kata::Status last_status;
};

template <typename T>
void Append(std::vector<uint8_t>* v, T x) {
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  v->insert(v->end(), p, p + sizeof x);
}

std::vector<uint8_t> U64(uint64_t x) {
  std::vector<uint8_t> v;
  Append(&v, x);
  return v;
}

std::vector<uint8_t> State(uint32_t index, uint32_t num) {
  std::vector<uint8_t> v;
  Append(&v, index);
  Append(&v, num);
  return v;
}

struct Region {
  uint64_t gpa, size, uva, offset;
};

std::vector<uint8_t> MemTable(const std::vector<Region>& rs) {
  std::vector<uint8_t> v;
  Append<uint32_t>(&v, static_cast<uint32_t>(rs.size()));
  Append<uint32_t>(&v, 0);
  for (const Region& r : rs) {
    Append(&v, r.gpa);
    Append(&v, r.size);
    Append(&v, r.uva);
    Append(&v, r.offset);
  }
  return v;
}

}  // namespace

TEST_CASE("vhost-user: feature negotiation", "[vsock]") {
  Front f;
  auto r = f.Call(kGetFeatures);
  REQUIRE(r);
  const uint64_t features = r->Get<uint64_t>(0);
  CHECK(features == (kVirtioFVersion1 | kVhostUserFProtocolFeatures | kVirtioRingFEventIdx |
                     kVirtioRingFIndirectDesc));
  r = f.Call(kGetProtocolFeatures);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == (kProtocolMq | kProtocolReplyAck | kProtocolConfig));
  CHECK_FALSE(f.Call(kSetProtocolFeatures, U64(kProtocolReplyAck | kProtocolConfig)));
  CHECK(f.session->protocol_features() == (kProtocolReplyAck | kProtocolConfig));
  r = f.Call(kGetQueueNum);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 2);
  // With REPLY_ACK: a success is acknowledged with 0, a failure with non-zero.
  r = f.Call(kSetFeatures, U64(kVirtioFVersion1 | kVirtioRingFEventIdx), {}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 0);
  r = f.Call(kSetFeatures, U64(1ull << 5), {}, true);  // not offered
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) != 0);
  r = f.Call(99, {}, {}, true);  // an unknown request
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) != 0);
  CHECK(f.last_status.ok());  // the session goes on

  VhostUserOptions slots;
  slots.offer_mem_slots = true;
  Front g(slots);
  r = g.Call(kGetProtocolFeatures);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) & kProtocolConfigureMemSlots);
  r = g.Call(kGetMaxMemSlots);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 32);
}

TEST_CASE("vhost-user: GET_CONFIG", "[vsock]") {
  Front f;
  std::vector<uint8_t> req;
  Append<uint32_t>(&req, 0);  // offset
  Append<uint32_t>(&req, 8);  // size
  Append<uint32_t>(&req, 0);  // flags
  req.resize(20);
  auto r = f.Call(kGetConfig, req);
  REQUIRE(r);
  REQUIRE(r->size == 20);
  CHECK(r->Get<uint64_t>(12) == 3);
  // Out of range: an empty payload tells the front-end it failed.
  std::vector<uint8_t> bad;
  Append<uint32_t>(&bad, 4);
  Append<uint32_t>(&bad, 8);
  Append<uint32_t>(&bad, 0);
  bad.resize(20);
  r = f.Call(kGetConfig, bad);
  REQUIRE(r);
  CHECK(r->size == 12);
}

TEST_CASE("vhost-user: memory table, rings, and a new table while they run", "[vsock]") {
  Front f;
  f.Call(kSetProtocolFeatures, U64(kProtocolReplyAck | kProtocolConfig));
  f.Call(kSetFeatures, U64(kVirtioFVersion1 | kVhostUserFProtocolFeatures));
  UniqueFd mem(memfd_create("guest", MFD_CLOEXEC));
  REQUIRE(ftruncate(mem.get(), 1 << 20) == 0);
  const uint64_t uva = 0x7f0000000000ull;
  // Two regions from one fd, the second at an offset.
  auto r =
      f.Call(kSetMemTable,
             MemTable({{0, 512 << 10, uva, 0}, {1 << 30, 512 << 10, uva + (512 << 10), 512 << 10}}),
             {mem.get(), mem.get()}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 0);
  const GuestMemory& gm = f.session->memory();
  REQUIRE(gm.num_regions() == 2);
  REQUIRE(pwrite(mem.get(), "ring", 4, (512 << 10) + 64) == 4);
  CHECK(memcmp(gm.GpaToHost((1 << 30) + 64, 4), "ring", 4) == 0);

  // Queue 1's rings inside the second region (user addresses).
  f.Call(kSetVringNum, State(1, 64));
  f.Call(kSetVringBase, State(1, 0));
  std::vector<uint8_t> addr;
  Append<uint32_t>(&addr, 1);
  Append<uint32_t>(&addr, 0);
  Append<uint64_t>(&addr, uva + (512 << 10));           // desc
  Append<uint64_t>(&addr, uva + (512 << 10) + 0x2000);  // used
  Append<uint64_t>(&addr, uva + (512 << 10) + 0x1000);  // avail
  Append<uint64_t>(&addr, 0);
  r = f.Call(kSetVringAddr, addr, {}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 0);
  const Virtqueue& q = f.session->queues()[1];
  CHECK(q.mapped());
  UniqueFd kick(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd call(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  f.Call(kSetVringCall, U64(1), {call.get()});
  f.Call(kSetVringKick, U64(1), {kick.get()});
  CHECK(q.started());
  CHECK_FALSE(q.enabled());  // protocol features negotiated: disabled until SET_VRING_ENABLE
  CHECK_FALSE(q.ready());
  f.Call(kSetVringEnable, State(1, 1));
  CHECK(q.ready());

  // A kick reaches the device through the loop.
  f.dev.kicks.clear();
  uint64_t one = 1;
  REQUIRE(write(kick.get(), &one, 8) == 8);
  REQUIRE(f.loop.RunOnce(0).ok());
  REQUIRE(f.dev.kicks.size() == 1);
  CHECK(f.dev.kicks[0] == 1);

  // A new table (memory hot-added) while the ring runs: the ring follows its user address.
  UniqueFd more(memfd_create("hotplug", MFD_CLOEXEC));
  REQUIRE(ftruncate(more.get(), 1 << 20) == 0);
  const int changes = f.dev.changes;
  r = f.Call(kSetMemTable,
             MemTable({{0, 512 << 10, uva, 0},
                       {1 << 30, 512 << 10, uva + (512 << 10), 512 << 10},
                       {1ull << 32, 1 << 20, uva + (4 << 20), 0}}),
             {mem.get(), mem.get(), more.get()}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 0);
  CHECK(gm.num_regions() == 3);
  CHECK(q.ready());
  CHECK(f.dev.changes > changes);
  CHECK(memcmp(gm.GpaToHost((1 << 30) + 64, 4), "ring", 4) == 0);

  // A table without the ring's memory leaves the ring unmapped (not ready), not dangling.
  r = f.Call(kSetMemTable, MemTable({{0, 512 << 10, uva, 0}}), {mem.get()}, true);
  REQUIRE(r);
  CHECK_FALSE(q.mapped());
  CHECK_FALSE(q.ready());

  // A table whose fd count does not match is refused, and the old one stays.
  r = f.Call(kSetMemTable, MemTable({{0, 4096, uva, 0}, {8192, 4096, uva + 8192, 0}}), {mem.get()},
             true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) != 0);
  CHECK(gm.num_regions() == 1);
}

TEST_CASE("vhost-user: ADD_MEM_REG and REM_MEM_REG", "[vsock]") {
  VhostUserOptions o;
  o.offer_mem_slots = true;
  Front f(o);
  f.Call(kSetProtocolFeatures, U64(kProtocolReplyAck | kProtocolConfigureMemSlots));
  UniqueFd mem(memfd_create("guest", MFD_CLOEXEC));
  REQUIRE(ftruncate(mem.get(), 1 << 20) == 0);
  auto reg = [](uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off) {
    std::vector<uint8_t> v;
    Append<uint64_t>(&v, 0);
    Append(&v, gpa);
    Append(&v, size);
    Append(&v, uva);
    Append(&v, off);
    return v;
  };
  auto r = f.Call(kAddMemReg, reg(0, 4096, 0x10000, 0), {mem.get()}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 0);
  r = f.Call(kAddMemReg, reg(1 << 20, 8192, 0x20000, 4096), {mem.get()}, true);
  REQUIRE(r);
  CHECK(f.session->memory().num_regions() == 2);
  r = f.Call(kAddMemReg, reg(100, 4096, 0x90000, 0), {mem.get()}, true);  // overlaps
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) != 0);
  r = f.Call(kRemMemReg, reg(0, 4096, 0x10000, 0), {}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) == 0);
  CHECK(f.session->memory().num_regions() == 1);
  r = f.Call(kRemMemReg, reg(0, 4096, 0x10000, 0), {}, true);
  REQUIRE(r);
  CHECK(r->Get<uint64_t>(0) != 0);
}

TEST_CASE("vhost-user: stop and restart tell a pause from a device reset", "[vsock]") {
  Front f;
  f.Call(kSetVringNum, State(0, 64));
  f.Call(kSetVringBase, State(0, 0));
  UniqueFd kick(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  f.Call(kSetVringKick, U64(0), {kick.get()});
  CHECK(f.session->queues()[0].started());
  auto r = f.Call(kGetVringBase, State(0, 0));
  REQUIRE(r);
  CHECK(r->Get<uint32_t>(0) == 0);
  CHECK(r->Get<uint32_t>(4) == 0);
  CHECK_FALSE(f.session->queues()[0].started());
  // A restart from the same index (the VM was paused): connections stay.
  f.Call(kSetVringBase, State(0, 0));
  CHECK(f.dev.resets.empty());
  f.Call(kSetVringKick, U64(0), {kick.get()});
  // The guest moved on; then a restart from another index: the driver reset the device.
  f.Call(kGetVringBase, State(0, 0));
  f.Call(kSetVringBase, State(0, 7));
  CHECK(f.dev.resets.size() == 1);
  // Ending the session resets the device too.
  f.session.reset();
  CHECK(f.dev.resets.size() == 2);
}

TEST_CASE("vhost-user: the server accepts a new front-end after the old one left", "[vsock]") {
  EventLoop loop;
  REQUIRE(loop.Init().ok());
  RecordingDevice dev;
  char tmpl[] = "/tmp/vhost-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string path = std::string(tmpl) + "/vhost.sock";
  VhostUserServer server(&loop, &dev, path, {});
  REQUIRE(server.Start().ok());
  auto connect_front = [&] {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sun = {};
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path.c_str(), path.size());
    REQUIRE(connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
    return fd;
  };
  for (int round = 0; round < 2; ++round) {
    UniqueFd front = connect_front();
    REQUIRE(loop.RunOnce(100).ok());
    CHECK(server.connected());
    REQUIRE(WriteVhostUserMsg(front.get(), kGetFeatures, kVhostUserVersion, nullptr, 0).ok());
    REQUIRE(loop.RunOnce(100).ok());
    VhostUserMsg reply;
    auto ok = ReadVhostUserMsg(front.get(), &reply);
    REQUIRE(ok.ok());
    CHECK(reply.Get<uint64_t>(0) & kVirtioFVersion1);
    front.reset();
    REQUIRE(loop.RunOnce(100).ok());
    CHECK_FALSE(server.connected());
  }
  unlink(path.c_str());
  rmdir(tmpl);
}
