// The back-end side of the vhost-user protocol (QEMU docs/interop/vhost-user.rst) for one
// virtio device: feature negotiation, the memory table, the vrings and the config space.
//
//   VhostUserServer server(&loop, &device, "/run/vm/vhost.sock", {});
//   RETURN_IF_ERROR(server.Start());      // listens; the front-end (QEMU) connects as client
//
// One front-end at a time. When it goes away the device is reset (its connections dropped),
// the memory unmapped, and the server accepts the next one (a restarted QEMU).
//
// Offered: VIRTIO_F_VERSION_1, VHOST_USER_F_PROTOCOL_FEATURES, VIRTIO_RING_F_EVENT_IDX and
// VIRTIO_RING_F_INDIRECT_DESC; protocol features MQ, REPLY_ACK and CONFIG, and
// CONFIGURE_MEM_SLOTS when asked for. Not offered: logging (migration), postcopy, inflight
// tracking, back-end requests, IOMMU.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event_loop.h"
#include "guest_memory.h"
#include "util/status.h"
#include "util/unique_fd.h"
#include "virtio_device.h"
#include "virtqueue.h"

namespace kata::vsock {

enum VhostUserRequest : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
};

inline constexpr uint64_t kVirtioFVersion1 = 1ull << 32;
inline constexpr uint64_t kVhostUserFProtocolFeatures = 1ull << 30;

inline constexpr uint64_t kProtocolMq = 1ull << 0;
inline constexpr uint64_t kProtocolReplyAck = 1ull << 3;
inline constexpr uint64_t kProtocolConfig = 1ull << 9;
inline constexpr uint64_t kProtocolConfigureMemSlots = 1ull << 15;

inline constexpr uint32_t kVhostUserVersion = 0x1;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;

struct VhostUserMsg {
  static constexpr uint32_t kHeaderSize = 12;
  static constexpr uint32_t kMaxPayload = 4096;
  static constexpr size_t kMaxFds = 32;

  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
  uint8_t payload[kMaxPayload] = {};
  std::vector<UniqueFd> fds;

  template <typename T>
  T Get(size_t off) const {
    T v;
    memcpy(&v, payload + off, sizeof v);
    return v;
  }
  template <typename T>
  void Put(size_t off, T v) {
    memcpy(payload + off, &v, sizeof v);
  }
};

// Reads one message (and the fds sent with it). Returns false on a clean end of stream.
StatusOr<bool> ReadVhostUserMsg(int fd, VhostUserMsg* m);
// Writes a message: header, payload and, when given, fds (used by replies and by tests).
Status WriteVhostUserMsg(int fd, uint32_t request, uint32_t flags, const void* payload,
                         uint32_t size, const std::vector<int>& fds = {});

struct VhostUserOptions {
  bool offer_mem_slots = false;  // CONFIGURE_MEM_SLOTS: ADD/REM_MEM_REG instead of SET_MEM_TABLE
  uint32_t max_mem_slots = 32;
};

// The protocol state of one front-end connection: memory, queues, negotiated features.
class VhostUserSession {
 public:
  VhostUserSession(EventLoop* loop, VirtioDevice* device, VhostUserOptions opts);
  ~VhostUserSession();
  VhostUserSession(const VhostUserSession&) = delete;
  VhostUserSession& operator=(const VhostUserSession&) = delete;

  // Handles one message, replying on sock. An error means the connection must be dropped.
  Status Handle(VhostUserMsg& m, int sock);

  const GuestMemory& memory() const { return mem_; }
  const std::vector<Virtqueue>& queues() const { return queues_; }
  uint64_t acked_features() const { return acked_features_; }
  uint64_t protocol_features() const { return protocol_features_; }
  uint64_t OfferedFeatures() const;
  uint64_t OfferedProtocolFeatures() const;

 private:
  Status Dispatch(VhostUserMsg& m, int sock, bool* replied);
  Status SetMemTable(VhostUserMsg& m);
  Status AddMemReg(VhostUserMsg& m);
  Status RemMemReg(VhostUserMsg& m);
  Status SetVringFd(VhostUserMsg& m);
  Status GetConfig(VhostUserMsg& m, int sock);
  StatusOr<Virtqueue*> Queue(uint32_t index);
  void RemapQueues();
  void StopQueue(size_t i);
  void WatchKick(size_t i);

  EventLoop* loop_;
  VirtioDevice* device_;
  VhostUserOptions opts_;
  GuestMemory mem_;
  std::vector<Virtqueue> queues_;
  std::vector<EventLoop::HandlerId> kick_handlers_;
  // The ring index each queue had when it was last stopped: a restart from a different
  // index means the driver reset the device (guest reboot), not a pause.
  std::vector<std::optional<uint16_t>> stopped_at_;
  uint64_t acked_features_ = 0;
  uint64_t protocol_features_ = 0;
};

// Listens on a unix socket path and serves one front-end at a time.
class VhostUserServer {
 public:
  VhostUserServer(EventLoop* loop, VirtioDevice* device, std::string path, VhostUserOptions opts);
  ~VhostUserServer();
  Status Start();
  bool connected() const { return session_ != nullptr; }

 private:
  void WatchListener();
  void OnAccept();
  void OnReadable();
  void EndSession(std::string_view why);

  EventLoop* loop_;
  VirtioDevice* device_;
  std::string path_;
  VhostUserOptions opts_;
  UniqueFd listen_fd_;
  EventLoop::HandlerId listen_handler_ = 0;
  UniqueFd conn_;
  EventLoop::HandlerId conn_handler_ = 0;
  std::unique_ptr<VhostUserSession> session_;
  std::unique_ptr<VhostUserMsg> msg_;
};

}  // namespace kata::vsock
