// A fake virtio driver for the vsock back-end's unit tests: guest memory in a plain buffer
// (two regions, so buffers can cross a region boundary), split rings laid out in it, and
// helpers to post descriptor chains split any way a test likes and to read back used ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "guest_memory.h"
#include "packet.h"
#include "virtqueue.h"

namespace kata::vsock::testing {

inline constexpr uint64_t kUvaBase = 0x7f0000000000ull;

class FakeGuest {
 public:
  static constexpr uint64_t kRegionSize = 2 << 20;
  static constexpr uint64_t kWrapTo = 1 << 20;

  FakeGuest() : ram_(2 * kRegionSize + 4096) {
    // Two regions, contiguous in guest-physical space, not in host memory order.
    uint8_t* base = Aligned();
    host_[0] = base + kRegionSize;  // gpa [0, 2M) lives in the second half of the buffer
    host_[1] = base;                // gpa [2M, 4M) in the first
    mem.Add(GuestMemory::Borrow({0, kRegionSize, kUvaBase, 0}, host_[0])).IgnoreError();
    mem.Add(GuestMemory::Borrow({kRegionSize, kRegionSize, kUvaBase + kRegionSize, 0}, host_[1]))
        .IgnoreError();
  }

  uint8_t* Host(uint64_t gpa) { return host_[gpa / kRegionSize] + gpa % kRegionSize; }
  void Write(uint64_t gpa, const void* p, size_t n) {
    const auto* s = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) *Host(gpa + i) = s[i];
  }
  void Read(uint64_t gpa, void* p, size_t n) {
    auto* d = static_cast<uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) d[i] = *Host(gpa + i);
  }
  template <typename T>
  T Get(uint64_t gpa) {
    T v;
    Read(gpa, &v, sizeof v);
    return v;
  }
  template <typename T>
  void Put(uint64_t gpa, T v) {
    Write(gpa, &v, sizeof v);
  }

  // A bump allocator over guest memory.
  uint64_t Alloc(size_t n, size_t align = 16) {
    next_ = (next_ + align - 1) / align * align;
    uint64_t at = next_;
    next_ += n;
    if (next_ > 2 * kRegionSize) {
      // Wrap above the rings (allocated first, below 1 MiB); in-flight buffers are few.
      at = (kWrapTo + align - 1) / align * align;
      next_ = at + n;
    }
    return at;
  }
  // Places the next allocation so that it starts `before` bytes below the region boundary.
  void AllocNearBoundary(size_t before) { next_ = kRegionSize - before; }

  struct Seg {
    Seg(uint32_t l, bool w, std::optional<uint64_t> at = std::nullopt)
        : len(l), write(w), gpa(at) {}
    uint32_t len;
    bool write;
    std::optional<uint64_t> gpa;  // default: freshly allocated
  };

  struct Ring {
    uint16_t num = 0;
    uint64_t desc = 0, avail = 0, used = 0;
    uint16_t avail_idx = 0;
    uint16_t last_used = 0;
    uint16_t next_desc = 0;
    Virtqueue* vq = nullptr;
  };

  // Lays out a ring of `num` entries and configures vq to use it (started and enabled).
  void SetupQueue(Ring* r, Virtqueue* vq, uint16_t num, uint64_t features) {
    r->num = num;
    r->desc = Alloc(16 * num, 16);
    r->avail = Alloc(6 + 2 * num, 2);
    r->used = Alloc(6 + 8 * num, 4);
    for (uint64_t a = r->desc; a < r->desc + 16 * num; ++a) *Host(a) = 0;
    for (uint64_t a = r->avail; a < r->avail + 6 + 2 * num; ++a) *Host(a) = 0;
    for (uint64_t a = r->used; a < r->used + 6 + 8 * num; ++a) *Host(a) = 0;
    r->vq = vq;
    vq->SetNum(num).IgnoreError();
    vq->SetAddrs({kUvaBase + r->desc, kUvaBase + r->avail, kUvaBase + r->used});
    vq->SetFeatures(features);
    vq->SetBase(0);
    vq->Map(mem).IgnoreError();
    vq->set_started(true);
    vq->set_enabled(true);
  }

  void PutDesc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
               uint16_t next) {
    uint64_t d = table + 16 * i;
    Put<uint64_t>(d, addr);
    Put<uint32_t>(d + 8, len);
    Put<uint16_t>(d + 12, flags);
    Put<uint16_t>(d + 14, next);
  }

  // Adds a chain of buffers; returns the head and, in *gpas, where each buffer is.
  uint16_t AddChain(Ring* r, const std::vector<Seg>& segs, bool indirect = false,
                    std::vector<uint64_t>* gpas = nullptr, bool publish = true) {
    std::vector<uint64_t> at;
    for (const Seg& s : segs) at.push_back(s.gpa ? *s.gpa : Alloc(s.len ? s.len : 1, 1));
    if (gpas) *gpas = at;
    uint16_t head;
    if (indirect) {
      uint64_t table = Alloc(16 * segs.size(), 16);
      for (size_t i = 0; i < segs.size(); ++i) {
        uint16_t flags = (segs[i].write ? 2 : 0) | (i + 1 < segs.size() ? 1 : 0);
        PutDesc(table, static_cast<uint16_t>(i), at[i], segs[i].len, flags,
                static_cast<uint16_t>(i + 1));
      }
      head = TakeDesc(r);
      PutDesc(r->desc, head, table, static_cast<uint32_t>(16 * segs.size()), 4, 0);
    } else {
      std::vector<uint16_t> ids;
      for (size_t i = 0; i < segs.size(); ++i) ids.push_back(TakeDesc(r));
      for (size_t i = 0; i < segs.size(); ++i) {
        uint16_t flags = (segs[i].write ? 2 : 0) | (i + 1 < segs.size() ? 1 : 0);
        PutDesc(r->desc, ids[i], at[i], segs[i].len, flags, i + 1 < segs.size() ? ids[i + 1] : 0);
      }
      head = ids[0];
    }
    Put<uint16_t>(r->avail + 4 + 2 * (r->avail_idx % r->num), head);
    ++r->avail_idx;
    if (publish) Publish(r);
    return head;
  }
  void Publish(Ring* r) { Put<uint16_t>(r->avail + 2, r->avail_idx); }

  uint16_t UsedIdx(const Ring& r) { return Get<uint16_t>(r.used + 2); }
  // Used entries since the last call: (head, len).
  std::vector<std::pair<uint16_t, uint32_t>> TakeUsed(Ring* r) {
    std::vector<std::pair<uint16_t, uint32_t>> out;
    while (r->last_used != UsedIdx(*r)) {
      uint64_t e = r->used + 4 + 8 * (r->last_used % r->num);
      out.emplace_back(static_cast<uint16_t>(Get<uint32_t>(e)), Get<uint32_t>(e + 4));
      ++r->last_used;
    }
    return out;
  }

 private:
  uint8_t* Aligned() {
    auto p = reinterpret_cast<uintptr_t>(ram_.data());
    return reinterpret_cast<uint8_t*>((p + 4095) / 4096 * 4096);
  }
  uint16_t TakeDesc(Ring* r) {
    uint16_t d = r->next_desc;
    r->next_desc = static_cast<uint16_t>((r->next_desc + 1) % r->num);
    return d;
  }

  std::vector<uint8_t> ram_;
  uint8_t* host_[2];
  uint64_t next_ = 0x1000;

 public:
  GuestMemory mem;
};

}  // namespace kata::vsock::testing
