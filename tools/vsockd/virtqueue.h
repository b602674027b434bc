// The device side of one split virtqueue (virtio 1.2, 2.7) in shared guest memory.
//
//   DescChain chain;
//   while (vq.Peek(mem, &chain) == Virtqueue::Peeked::kChain) {
//     ... read chain.out / write chain.in ...
//     vq.Consume();
//     vq.PushUsed(chain.head, bytes_written);
//   }
//   vq.EnableKicks();   // re-arm the driver's notifications, then look again if it says so
//   vq.Signal();        // interrupt the driver if it asked for one
//
// Peek does not consume: a chain the device cannot use yet (no data to put in an rx buffer)
// stays available. Chains are walked with indirect tables (VIRTIO_RING_F_INDIRECT_DESC) and
// notifications follow VIRTIO_RING_F_EVENT_IDX when negotiated. The driver runs concurrently
// (other CPUs), so ring indexes are read with acquire and published with release ordering.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "guest_memory.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata::vsock {

inline constexpr uint64_t kVirtioRingFIndirectDesc = 1ull << 28;
inline constexpr uint64_t kVirtioRingFEventIdx = 1ull << 29;

// One available buffer: its device-readable (out) and device-writable (in) parts in host memory.
struct DescChain {
  uint16_t head = 0;
  std::vector<iovec> out;
  std::vector<iovec> in;
  size_t out_len = 0;
  size_t in_len = 0;

  void Clear() {
    out.clear();
    in.clear();
    out_len = in_len = 0;
  }
};

struct RingAddrs {
  uint64_t desc = 0;  // user addresses (the front-end's virtual addresses)
  uint64_t avail = 0;
  uint64_t used = 0;
};

class Virtqueue {
 public:
  static constexpr uint32_t kMaxSize = 32768;

  enum class Peeked {
    kEmpty,     // nothing available
    kChain,     // *chain filled
    kBadChain,  // the next chain is malformed: Consume() and PushUsed(chain->head, 0) it
    kBroken,    // the ring itself is unusable (bad index); stop using the queue
  };

  // Back to the initial, stopped state (fds closed, addresses forgotten).
  void Reset();

  Status SetNum(uint32_t num);
  void SetAddrs(const RingAddrs& a) {
    addrs_ = a;
    have_addrs_ = true;
  }
  void SetBase(uint16_t base) {
    last_avail_ = base;
    used_idx_ = base;
    signalled_valid_ = false;
  }
  void SetFeatures(uint64_t features) {
    event_idx_ = features & kVirtioRingFEventIdx;
    indirect_ = features & kVirtioRingFIndirectDesc;
  }
  // Translates the ring addresses through mem; called when the addresses or the memory
  // table change. Failure leaves the queue unmapped (not ready).
  Status Map(const GuestMemory& mem);
  void Unmap() { desc_ = nullptr, avail_ = nullptr, used_ = nullptr; }

  void set_kick_fd(UniqueFd fd) { kick_ = std::move(fd); }
  void set_call_fd(UniqueFd fd) { call_ = std::move(fd); }
  int kick_fd() const { return kick_.get(); }
  void set_started(bool s) { started_ = s; }
  void set_enabled(bool e) { enabled_ = e; }
  bool started() const { return started_; }
  bool enabled() const { return enabled_; }
  bool mapped() const { return desc_ != nullptr; }
  bool ready() const { return started_ && enabled_ && mapped() && !broken_; }
  bool has_addrs() const { return have_addrs_; }
  uint32_t num() const { return num_; }
  // The next available index the device will look at (what GET_VRING_BASE reports).
  uint16_t last_avail() const { return last_avail_; }

  Peeked Peek(const GuestMemory& mem, DescChain* chain);
  void Consume() { ++last_avail_; }
  void PushUsed(uint16_t head, uint32_t len);

  // Asks the driver to notify (kick) when it adds buffers; true when buffers were added
  // meanwhile, so the caller looks again before waiting.
  bool EnableKicks();
  // Interrupts the driver if buffers were used since the last signal and it wants to know.
  void Signal();
  // Whether the driver wants an interrupt now (used by Signal; exposed for tests).
  bool NeedsSignal();

 private:
  struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
  };
  Desc ReadDesc(const uint8_t* table, uint32_t i) const;
  bool AddBuffer(const GuestMemory& mem, const Desc& d, DescChain* chain) const;
  uint16_t AvailIdx() const;
  uint16_t AvailFlags() const;
  uint16_t UsedEvent() const;

  uint32_t num_ = 0;
  RingAddrs addrs_;
  bool have_addrs_ = false;
  uint8_t* desc_ = nullptr;
  uint8_t* avail_ = nullptr;
  uint8_t* used_ = nullptr;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_valid_ = false;
  bool pushed_ = false;
  bool event_idx_ = false;
  bool indirect_ = false;
  bool started_ = false;
  bool enabled_ = false;
  bool broken_ = false;
  UniqueFd kick_;
  UniqueFd call_;
};

}  // namespace kata::vsock
