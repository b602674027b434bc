// The virtio-vsock device: connections between host unix sockets and guest ports, carried
// as packets on the rx (device -> driver, queue 0) and tx (driver -> device, queue 1) queues.
// The event queue (2) stays with the front-end.
//
//   VsockDevice dev(&loop, opts, dial);
//   session.SetDevice(&dev);                          // Attach/QueueKicked/... from vhost-user
//   loop.SetBatchHook([&] { dev.Flush(); });         // fill rx buffers, interrupt the guest
//   dev.ConnectToGuest(std::move(client_fd), 1024);  // a hybrid client's "CONNECT 1024"
//
// Host data goes to the guest only when the guest has credit and an rx buffer: it is read
// from the host socket straight into the buffer. Guest data goes to the host socket at once
// when the socket takes it, else waits in the connection's buffer (bounded by the credit we
// advertise). Nothing is ever buffered without bound: control packets owed to the guest are
// flags on their connection, and replies to packets for unknown connections are capped
// (when the cap is hit, the tx queue is left alone until the guest takes its rx buffers).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "connection.h"
#include "event_loop.h"
#include "virtio_device.h"

namespace kata::vsock {

struct VsockOptions {
  uint64_t guest_cid = 3;
  uint32_t buf_alloc = 256 * 1024;  // per-connection receive buffer advertised to the guest
  size_t max_connections = 4096;
  int connect_timeout_ms = 5000;  // a host-initiated connection without RESPONSE
  int close_timeout_ms = 5000;    // our SHUTDOWN without the guest's RST
  uint32_t max_packet_payload = 64 * 1024;
};

class VsockDevice : public VirtioDevice {
 public:
  static constexpr size_t kRxQueue = 0;
  static constexpr size_t kTxQueue = 1;
  // Connects to the host listener for a guest-initiated connection to `port`.
  using Dialer = std::function<StatusOr<UniqueFd>(uint32_t port)>;

  VsockDevice(EventLoop* loop, VsockOptions opts, Dialer dial);
  ~VsockDevice() override;

  // VirtioDevice
  uint64_t DeviceFeatures() const override { return 0; }
  size_t NumQueues() const override { return 2; }
  std::vector<uint8_t> Config() const override;
  void Attach(const GuestMemory* mem, std::vector<Virtqueue>* queues) override;
  void QueueKicked(size_t index) override;
  void QueuesChanged() override;
  void Reset(std::string_view why) override;

  // A host client asked for guest port `port`; the device owns the fd from now on: it gets
  // "OK <host port>\n" once the guest accepts, or is closed.
  void ConnectToGuest(UniqueFd fd, uint32_t port);

  // Fills rx buffers with what connections owe the guest and signals both queues.
  void Flush();

  size_t num_connections() const { return conns_.size(); }
  const Connection* Find(uint32_t host_port, uint32_t guest_port) const;

 private:
  Virtqueue* rx() const;
  Virtqueue* tx() const;
  void ProcessTx();
  void HandlePacket(const Header& h, const std::vector<iovec>& payload);
  void HandleRequest(const Header& h);
  void HandleRw(Connection* c, const Header& h, const std::vector<iovec>& payload);
  void HandleShutdown(Connection* c, uint32_t flags);
  void ReplyRst(const Header& h);
  void FillRx();
  // Writes one packet owed by c into chain; returns the bytes written (0: none owed now).
  size_t FillOne(Connection* c, const DescChain& chain);
  void OnHostEvent(uint64_t key, uint32_t events);
  void FlushToHost(Connection* c);
  // Called after the guest or the host side made progress: finishes half-closes and closes.
  void Settle(Connection* c);
  void HostGone(Connection* c);
  void Abort(Connection* c, std::string_view why);
  void Destroy(Connection* c, std::string_view why);
  void CloseHost(Connection* c);
  void Schedule(Connection* c);
  Connection* Lookup(uint64_t key);
  StatusOr<Connection*> NewConnection(uint32_t host_port, uint32_t guest_port, UniqueFd fd);
  uint32_t AllocHostPort(uint32_t guest_port);

  EventLoop* loop_;
  VsockOptions opts_;
  Dialer dial_;
  const GuestMemory* mem_ = nullptr;
  std::vector<Virtqueue>* queues_ = nullptr;

  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::deque<uint64_t> rx_work_;    // connections that owe the guest a packet
  std::deque<Header> rst_replies_;  // RSTs for packets of unknown connections
  static constexpr size_t kMaxRstReplies = 256;
  bool tx_pending_ = false;  // tx left unprocessed for back-pressure
  uint32_t next_host_port_ = 1u << 30;
  DescChain chain_;  // scratch, reused
};

}  // namespace kata::vsock
