#include "virtqueue.h"

#include <cstring>

namespace kata::vsock {
namespace {

constexpr uint16_t kDescFNext = 1;
constexpr uint16_t kDescFWrite = 2;
constexpr uint16_t kDescFIndirect = 4;
constexpr uint16_t kAvailFNoInterrupt = 1;
constexpr size_t kDescSize = 16;

template <typename T>
T LoadAcquire(const uint8_t* p) {
  return __atomic_load_n(reinterpret_cast<const T*>(p), __ATOMIC_ACQUIRE);
}
template <typename T>
T LoadRelaxed(const uint8_t* p) {
  return __atomic_load_n(reinterpret_cast<const T*>(p), __ATOMIC_RELAXED);
}
template <typename T>
void StoreRelease(uint8_t* p, T v) {
  __atomic_store_n(reinterpret_cast<T*>(p), v, __ATOMIC_RELEASE);
}

// virtio's vring_need_event: whether `event` lies in the window (old, new].
bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

void Virtqueue::Reset() { *this = Virtqueue(); }

Status Virtqueue::SetNum(uint32_t num) {
  if (num == 0 || num > kMaxSize || (num & (num - 1)) != 0) {
    return absl::InvalidArgumentError(StrCat("invalid queue size ", num));
  }
  num_ = num;
  return absl::OkStatus();
}

Status Virtqueue::Map(const GuestMemory& mem) {
  Unmap();
  if (!have_addrs_ || num_ == 0) return absl::FailedPreconditionError("queue not configured");
  uint8_t* d = mem.UvaToHost(addrs_.desc, kDescSize * num_);
  uint8_t* a = mem.UvaToHost(addrs_.avail, 6 + 2 * num_);
  uint8_t* u = mem.UvaToHost(addrs_.used, 6 + 8 * num_);
  if (d == nullptr || a == nullptr || u == nullptr) {
    return absl::InvalidArgumentError(StrCat("ring addresses desc=", addrs_.desc,
                                             " avail=", addrs_.avail, " used=", addrs_.used,
                                             " are not in guest memory"));
  }
  if (reinterpret_cast<uintptr_t>(a) % 2 != 0 || reinterpret_cast<uintptr_t>(u) % 4 != 0) {
    return absl::InvalidArgumentError("misaligned ring");
  }
  desc_ = d;
  avail_ = a;
  used_ = u;
  broken_ = false;
  return absl::OkStatus();
}

uint16_t Virtqueue::AvailIdx() const { return LoadAcquire<uint16_t>(avail_ + 2); }
uint16_t Virtqueue::AvailFlags() const { return LoadRelaxed<uint16_t>(avail_); }
uint16_t Virtqueue::UsedEvent() const { return LoadRelaxed<uint16_t>(avail_ + 4 + 2 * num_); }

Virtqueue::Desc Virtqueue::ReadDesc(const uint8_t* table, uint32_t i) const {
  Desc d;
  const uint8_t* p = table + kDescSize * i;
  memcpy(&d.addr, p, 8);
  memcpy(&d.len, p + 8, 4);
  memcpy(&d.flags, p + 12, 2);
  memcpy(&d.next, p + 14, 2);
  return d;
}

bool Virtqueue::AddBuffer(const GuestMemory& mem, const Desc& d, DescChain* chain) const {
  if (d.len == 0) return true;
  const bool writable = d.flags & kDescFWrite;
  // The driver puts device-writable buffers after all device-readable ones.
  if (!writable && !chain->in.empty()) return false;
  if (!mem.GpaToIovecs(d.addr, d.len, writable ? &chain->in : &chain->out)) return false;
  (writable ? chain->in_len : chain->out_len) += d.len;
  return true;
}

Virtqueue::Peeked Virtqueue::Peek(const GuestMemory& mem, DescChain* chain) {
  chain->Clear();
  if (!ready()) return Peeked::kEmpty;
  const uint16_t avail_idx = AvailIdx();
  if (avail_idx == last_avail_) return Peeked::kEmpty;
  if (static_cast<uint16_t>(avail_idx - last_avail_) > num_) {
    broken_ = true;  // the driver claims more buffers than the ring holds
    return Peeked::kBroken;
  }
  const uint16_t head = LoadRelaxed<uint16_t>(avail_ + 4 + 2 * (last_avail_ % num_));
  chain->head = head;
  if (head >= num_) {
    broken_ = true;  // no descriptor to give back: the ring is unusable
    return Peeked::kBroken;
  }

  const uint8_t* table = desc_;
  uint32_t table_size = num_;
  bool in_indirect = false;
  uint32_t idx = head;
  uint32_t walked = 0;
  for (;;) {
    Desc d = ReadDesc(table, idx);
    if (d.flags & kDescFIndirect) {
      if (in_indirect || !indirect_ || (d.flags & kDescFNext) || d.len == 0 ||
          d.len % kDescSize != 0 || d.len / kDescSize > kMaxSize) {
        return Peeked::kBadChain;
      }
      table = mem.GpaToHost(d.addr, d.len);
      if (table == nullptr) return Peeked::kBadChain;
      table_size = d.len / kDescSize;
      in_indirect = true;
      idx = 0;
      walked = 0;
      continue;
    }
    if (++walked > table_size) return Peeked::kBadChain;  // a loop in the chain
    if (!AddBuffer(mem, d, chain)) return Peeked::kBadChain;
    if (!(d.flags & kDescFNext)) break;
    idx = d.next;
    if (idx >= table_size) return Peeked::kBadChain;
  }
  return Peeked::kChain;
}

void Virtqueue::PushUsed(uint16_t head, uint32_t len) {
  if (!mapped()) return;
  uint8_t* e = used_ + 4 + 8 * (used_idx_ % num_);
  const uint32_t id = head;
  memcpy(e, &id, 4);
  memcpy(e + 4, &len, 4);
  ++used_idx_;
  StoreRelease<uint16_t>(used_ + 2, used_idx_);
  pushed_ = true;
}

bool Virtqueue::EnableKicks() {
  if (!mapped()) return false;
  if (event_idx_) {
    // avail_event: kick me when you make the entry at last_avail_ available.
    StoreRelease<uint16_t>(used_ + 4 + 8 * num_, last_avail_);
  } else {
    StoreRelease<uint16_t>(used_, 0);  // VRING_USED_F_NO_NOTIFY clear
  }
  // The store above must be visible before we look at the index again, or a buffer added
  // in between would be neither seen now nor kicked.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return AvailIdx() != last_avail_;
}

bool Virtqueue::NeedsSignal() {
  if (!mapped() || !pushed_) return false;
  pushed_ = false;
  // Our used index store must be visible before we read the driver's suppression state.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!event_idx_) return !(AvailFlags() & kAvailFNoInterrupt);
  const uint16_t old = signalled_used_;
  const bool valid = signalled_valid_;
  signalled_used_ = used_idx_;
  signalled_valid_ = true;
  return !valid || NeedEvent(UsedEvent(), used_idx_, old);
}

void Virtqueue::Signal() {
  if (!NeedsSignal() || !call_) return;
  const uint64_t one = 1;
  // An eventfd write only fails when the counter would overflow: the driver has more
  // than enough interrupts pending then.
  (void)!write(call_.get(), &one, sizeof one);
}

}  // namespace kata::vsock
