// The vsock back-end (tools/vsockd) on guest memory the guest fully controls: descriptor
// tables (direct and indirect), ring indexes and the packets themselves. Guest memory is
// a 64 KiB buffer filled from the input; the tx and rx rings sit at fixed addresses in it,
// so the input decides every descriptor and every header. One host connection waits for
// the guest's answer (so RESPONSE and RW have someone to reach), and a guest request to
// an odd host port is connected to a socketpair (even ports are refused).
//
// Input: one byte of ring features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), one byte of
// queue size (2..64, a power of two), then guest memory.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "event_loop.h"
#include "fuzz_util.h"
#include "guest_memory.h"
#include "packet.h"
#include "util/log.h"
#include "virtqueue.h"
#include "vsock_device.h"

using namespace kata::vsock;

namespace {

constexpr uint64_t kMemSize = 64 * 1024;
constexpr uint64_t kUva = 0x7f0000000000ull;
// Ring layout (guest-physical): tx at 0x0, rx at 0x1000; the rest is buffers.
constexpr uint64_t kTxDesc = 0x0000, kTxAvail = 0x0400, kTxUsed = 0x0600;
constexpr uint64_t kRxDesc = 0x1000, kRxAvail = 0x1400, kRxUsed = 0x1600;

void SetupQueue(Virtqueue* vq, const GuestMemory& mem, uint32_t num, uint64_t desc, uint64_t avail,
                uint64_t used, uint64_t features) {
  FUZZ_CHECK(vq->SetNum(num).ok());
  vq->SetAddrs({kUva + desc, kUva + avail, kUva + used});
  vq->SetFeatures(features);
  vq->SetBase(0);
  FUZZ_CHECK(vq->Map(mem).ok());
  vq->set_started(true);
  vq->set_enabled(true);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kata::log::SetLevel(kata::log::Level::kCritical);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint64_t features =
      ((data[0] & 1) ? kVirtioRingFEventIdx : 0) | ((data[0] & 2) ? kVirtioRingFIndirectDesc : 0);
  uint32_t num = 2u << (data[1] % 6);  // 2..64
  data += 2;
  size -= 2;

  static std::vector<uint8_t> ram(kMemSize + 4096);
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(ram.data()) + 4095) &
                                          ~uintptr_t{4095});
  std::memset(base, 0, kMemSize);
  std::memcpy(base, data, std::min<size_t>(size, kMemSize));

  GuestMemory mem;
  FUZZ_CHECK(mem.Add(GuestMemory::Borrow({0, kMemSize, kUva, 0}, base)).ok());
  std::vector<Virtqueue> queues(2);
  SetupQueue(&queues[VsockDevice::kRxQueue], mem, num, kRxDesc, kRxAvail, kRxUsed, features);
  SetupQueue(&queues[VsockDevice::kTxQueue], mem, num, kTxDesc, kTxAvail, kTxUsed, features);

  EventLoop loop;
  FUZZ_CHECK(loop.Init().ok());
  std::vector<kata::UniqueFd> host_ends;
  VsockOptions opts;
  opts.max_connections = 8;
  auto dev = std::make_unique<VsockDevice>(
      &loop, opts, [&](uint32_t port) -> kata::StatusOr<kata::UniqueFd> {
        if (port % 2 == 0) return absl::NotFoundError("no listener");
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
          return absl::InternalError("socketpair");
        (void)!write(sv[1], "from the host", 13);
        host_ends.emplace_back(sv[1]);
        return kata::UniqueFd(sv[0]);
      });
  dev->Attach(&mem, &queues);
  loop.SetBatchHook([&] { dev->Flush(); });

  // A host client waiting for guest port 1024 (its host port is the first one, 1 << 30).
  int sv[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  kata::UniqueFd client(sv[1]);
  (void)!write(sv[1], "hello guest", 11);
  dev->ConnectToGuest(kata::UniqueFd(sv[0]), 1024);

  // The guest kicks both queues; the device works through what it finds.
  for (int round = 0; round < 3; ++round) {
    dev->QueueKicked(VsockDevice::kTxQueue);
    dev->QueueKicked(VsockDevice::kRxQueue);
    FUZZ_CHECK(loop.RunOnce(0).ok());
    dev->Flush();
  }
  FUZZ_CHECK(dev->num_connections() <= opts.max_connections + 1);
  dev->Reset("end of input");
  dev.reset();
  return 0;
}
