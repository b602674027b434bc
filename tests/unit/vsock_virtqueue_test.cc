#include <sys/eventfd.h>
#include <sys/mman.h>

#include <catch2/catch.hpp>

#include "guest_memory.h"
#include "iov.h"
#include "virtqueue.h"
#include "vsock_fake_guest.h"

using namespace kata::vsock;
using kata::vsock::testing::FakeGuest;
using kata::vsock::testing::kUvaBase;

TEST_CASE("guest memory translates guest and user addresses", "[vsock]") {
  FakeGuest g;
  GuestMemory& m = g.mem;
  CHECK(m.num_regions() == 2);
  CHECK(m.GpaToHost(0x1000, 16) == g.Host(0x1000));
  CHECK(m.UvaToHost(kUvaBase + 0x1000, 16) == g.Host(0x1000));
  // A range across the region boundary is not contiguous in host memory...
  const uint64_t b = FakeGuest::kRegionSize;
  CHECK(m.GpaToHost(b - 8, 16) == nullptr);
  // ...but maps to two iovecs.
  std::vector<iovec> iov;
  REQUIRE(m.GpaToIovecs(b - 8, 16, &iov));
  REQUIRE(iov.size() == 2);
  CHECK(iov[0].iov_base == g.Host(b - 8));
  CHECK(iov[0].iov_len == 8);
  CHECK(iov[1].iov_base == g.Host(b));
  CHECK(iov[1].iov_len == 8);
  // Outside guest memory, or overflowing: refused, nothing appended.
  iov.clear();
  CHECK_FALSE(m.GpaToIovecs(2 * b - 4, 8, &iov));
  CHECK(iov.empty());
  CHECK_FALSE(m.GpaToIovecs(~0ull - 2, 8, &iov));
  CHECK(m.GpaToHost(~0ull - 2, 8) == nullptr);
  CHECK(m.UvaToHost(kUvaBase - 1, 2) == nullptr);
  // Overlapping regions are refused; removal needs the exact region.
  uint8_t buf[64];
  CHECK_FALSE(m.Add(GuestMemory::Borrow({b - 16, 64, 0x1000, 0}, buf)).ok());
  CHECK_FALSE(m.Add(GuestMemory::Borrow({1ull << 40, 64, kUvaBase + 16, 0}, buf)).ok());
  CHECK(m.Add(GuestMemory::Borrow({1ull << 40, 64, 0x1000, 0}, buf)).ok());
  CHECK(m.GpaToHost((1ull << 40) + 8, 8) == buf + 8);
  CHECK_FALSE(m.Remove(1ull << 40, 0x1000, 32));
  CHECK(m.Remove(1ull << 40, 0x1000, 64));
  CHECK(m.GpaToHost((1ull << 40) + 8, 8) == nullptr);
}

TEST_CASE("guest memory maps a memfd and a copy keeps the mapping alive", "[vsock]") {
  kata::UniqueFd fd(memfd_create("guest", MFD_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(ftruncate(fd.get(), 3 * 4096) == 0);
  REQUIRE(pwrite(fd.get(), "hello", 5, 4096 + 100) == 5);
  // A region starting at a non-page-aligned offset of the fd.
  auto r = GuestMemory::Map({0x10000, 4096, 0x5000, 4096 + 100}, fd.get());
  REQUIRE(r.ok());
  GuestMemory m;
  REQUIRE(m.Add(std::move(*r)).ok());
  uint8_t* p = m.GpaToHost(0x10000, 5);
  REQUIRE(p != nullptr);
  CHECK(memcmp(p, "hello", 5) == 0);
  GuestMemory copy = m;
  m.Clear();
  CHECK(m.GpaToHost(0x10000, 5) == nullptr);
  CHECK(memcmp(copy.GpaToHost(0x10000, 5), "hello", 5) == 0);
}

namespace {

struct QueueFixture {
  FakeGuest g;
  FakeGuest::Ring r;
  Virtqueue vq;
  explicit QueueFixture(uint64_t features = 0, uint16_t num = 16) {
    g.SetupQueue(&r, &vq, num, features);
  }
};

}  // namespace

TEST_CASE("virtqueue: peek, consume, used ring", "[vsock]") {
  QueueFixture f;
  DescChain c;
  CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kEmpty);
  std::vector<uint64_t> at;
  uint16_t head =
      f.g.AddChain(&f.r, {{10, false}, {20, false}, {30, true}, {0, true}, {40, true}}, false, &at);
  REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
  CHECK(c.head == head);
  CHECK(c.out_len == 30);
  CHECK(c.in_len == 70);
  CHECK(c.out.size() == 2);
  CHECK(c.in.size() == 2);  // the empty buffer is skipped
  CHECK(c.out[1].iov_base == f.g.Host(at[1]));
  // Peek does not consume.
  DescChain again;
  REQUIRE(f.vq.Peek(f.g.mem, &again) == Virtqueue::Peeked::kChain);
  CHECK(again.head == head);
  f.vq.Consume();
  f.vq.PushUsed(c.head, 44);
  CHECK(f.vq.last_avail() == 1);
  CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kEmpty);
  auto used = f.g.TakeUsed(&f.r);
  REQUIRE(used.size() == 1);
  CHECK(used[0].first == head);
  CHECK(used[0].second == 44);
}

TEST_CASE("virtqueue: a buffer across a region boundary becomes two iovecs", "[vsock]") {
  QueueFixture f;
  f.g.AllocNearBoundary(8);
  f.g.AddChain(&f.r, {{20, true}});
  DescChain c;
  REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
  CHECK(c.in.size() == 2);
  CHECK(c.in_len == 20);
}

TEST_CASE("virtqueue: indirect descriptors only when negotiated", "[vsock]") {
  SECTION("negotiated") {
    QueueFixture f(kVirtioRingFIndirectDesc);
    f.g.AddChain(&f.r, {{44, false}, {100, false}}, /*indirect=*/true);
    DescChain c;
    REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
    CHECK(c.out_len == 144);
  }
  SECTION("not negotiated") {
    QueueFixture f(0);
    f.g.AddChain(&f.r, {{44, false}}, /*indirect=*/true);
    DescChain c;
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBadChain);
  }
}

TEST_CASE("virtqueue: malformed chains and rings are refused", "[vsock]") {
  DescChain c;
  SECTION("a loop in the chain") {
    QueueFixture f;
    uint64_t buf = f.g.Alloc(16);
    f.g.PutDesc(f.r.desc, 0, buf, 16, 1, 1);
    f.g.PutDesc(f.r.desc, 1, buf, 16, 1, 0);  // 0 -> 1 -> 0 -> ...
    f.g.Put<uint16_t>(f.r.avail + 4, 0);
    f.g.Put<uint16_t>(f.r.avail + 2, 1);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBadChain);
  }
  SECTION("a readable buffer after a writable one") {
    QueueFixture f;
    f.g.AddChain(&f.r, {{8, true}, {8, false}});
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBadChain);
  }
  SECTION("a buffer outside guest memory") {
    QueueFixture f;
    f.g.AddChain(&f.r, {{8, false, 1ull << 40}});
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBadChain);
  }
  SECTION("next out of range") {
    QueueFixture f;
    uint64_t buf = f.g.Alloc(16);
    f.g.PutDesc(f.r.desc, 0, buf, 16, 1, 200);
    f.g.Put<uint16_t>(f.r.avail + 2, 1);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBadChain);
  }
  SECTION("nested indirect table") {
    QueueFixture f(kVirtioRingFIndirectDesc);
    uint64_t inner = f.g.Alloc(16);
    uint64_t outer = f.g.Alloc(16);
    f.g.PutDesc(outer, 0, inner, 16, 4, 0);
    f.g.PutDesc(f.r.desc, 0, outer, 16, 4, 0);
    f.g.Put<uint16_t>(f.r.avail + 2, 1);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBadChain);
  }
  SECTION("head out of range breaks the ring") {
    QueueFixture f;
    f.g.Put<uint16_t>(f.r.avail + 4, 99);
    f.g.Put<uint16_t>(f.r.avail + 2, 1);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBroken);
    CHECK_FALSE(f.vq.ready());
  }
  SECTION("more available than the ring holds breaks the ring") {
    QueueFixture f;
    f.g.Put<uint16_t>(f.r.avail + 2, 17);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kBroken);
  }
  SECTION("rings outside guest memory do not map") {
    Virtqueue vq;
    REQUIRE(vq.SetNum(16).ok());
    vq.SetAddrs({1, 2, 3});
    CHECK_FALSE(vq.Map(FakeGuest().mem).ok());
    CHECK_FALSE(vq.mapped());
    CHECK_FALSE(vq.SetNum(0).ok());
    CHECK_FALSE(vq.SetNum(24).ok());
    CHECK_FALSE(vq.SetNum(65536).ok());
  }
}

TEST_CASE("virtqueue: interrupt suppression", "[vsock]") {
  SECTION("without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT") {
    QueueFixture f(0);
    CHECK_FALSE(f.vq.NeedsSignal());  // nothing used yet
    f.g.AddChain(&f.r, {{8, true}});
    DescChain c;
    REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
    f.vq.Consume();
    f.vq.PushUsed(c.head, 0);
    f.g.Put<uint16_t>(f.r.avail, 1);
    CHECK_FALSE(f.vq.NeedsSignal());
    f.g.AddChain(&f.r, {{8, true}});
    REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
    f.vq.Consume();
    f.vq.PushUsed(c.head, 0);
    f.g.Put<uint16_t>(f.r.avail, 0);
    CHECK(f.vq.NeedsSignal());
  }
  SECTION("with EVENT_IDX: used_event") {
    QueueFixture f(kVirtioRingFEventIdx, 16);
    const uint64_t used_event = f.r.avail + 4 + 2 * 16;
    auto use_one = [&] {
      f.g.AddChain(&f.r, {{8, true}});
      DescChain c;
      REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
      f.vq.Consume();
      f.vq.PushUsed(c.head, 0);
    };
    use_one();                         // used idx 1
    CHECK(f.vq.NeedsSignal());         // the first is always signalled
    f.g.Put<uint16_t>(used_event, 3);  // "interrupt me when used idx passes 3"
    use_one();                         // 2
    CHECK_FALSE(f.vq.NeedsSignal());
    use_one();  // 3
    CHECK_FALSE(f.vq.NeedsSignal());
    use_one();  // 4: crossed 3
    CHECK(f.vq.NeedsSignal());
    use_one();
    use_one();  // 6, event 3 stale
    CHECK_FALSE(f.vq.NeedsSignal());
  }
  SECTION("call fd gets an eventfd write") {
    QueueFixture f(0);
    kata::UniqueFd efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    f.vq.set_call_fd(kata::UniqueFd(dup(efd.get())));
    f.g.AddChain(&f.r, {{8, true}});
    DescChain c;
    REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
    f.vq.Consume();
    f.vq.PushUsed(c.head, 0);
    f.vq.Signal();
    uint64_t v = 0;
    CHECK(read(efd.get(), &v, 8) == 8);
    CHECK(v == 1);
    f.vq.Signal();  // nothing new used: no second interrupt
    CHECK(read(efd.get(), &v, 8) == -1);
  }
}

TEST_CASE("virtqueue: kick re-arming", "[vsock]") {
  SECTION("EVENT_IDX writes avail_event") {
    QueueFixture f(kVirtioRingFEventIdx, 16);
    const uint64_t avail_event = f.r.used + 4 + 8 * 16;
    f.g.AddChain(&f.r, {{8, true}});
    DescChain c;
    REQUIRE(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
    f.vq.Consume();
    CHECK_FALSE(f.vq.EnableKicks());
    CHECK(f.g.Get<uint16_t>(avail_event) == 1);
    f.g.AddChain(&f.r, {{8, true}});
    CHECK(f.vq.EnableKicks());  // a buffer arrived: look again before waiting
  }
  SECTION("a stopped or disabled queue yields nothing") {
    QueueFixture f;
    f.g.AddChain(&f.r, {{8, true}});
    DescChain c;
    f.vq.set_enabled(false);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kEmpty);
    f.vq.set_enabled(true);
    f.vq.set_started(false);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kEmpty);
    f.vq.set_started(true);
    CHECK(f.vq.Peek(f.g.mem, &c) == Virtqueue::Peeked::kChain);
  }
}
