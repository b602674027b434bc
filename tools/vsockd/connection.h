// One vsock stream between a host unix socket and a guest port: its credit accounting both
// ways (virtio 1.2, 5.10.6.3 "Flow Control"), the packets it owes the guest, and the guest's
// bytes waiting for a slow host reader.
//
// Flow control, as the spec defines it: each side advertises buf_alloc (its receive buffer)
// and fwd_cnt (bytes it has consumed from that buffer) in every packet header. A sender may
// have at most peer_buf_alloc - (tx_cnt - peer_fwd_cnt) bytes in flight. Here:
//   guest -> host: we advertise buf_alloc and count what we wrote to the host socket as
//     forwarded; bytes the socket did not take wait in `out`, which therefore never holds
//     more than buf_alloc bytes (a guest that sends beyond its credit is reset).
//   host -> guest: we read from the host socket only as many bytes as the guest's credit
//     allows, straight into its rx buffers; with no credit we stop reading, and the host
//     writer is held up by its own socket buffer.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "event_loop.h"
#include "packet.h"
#include "util/unique_fd.h"

namespace kata::vsock {

struct Credit {
  // Our receive side: bytes from the guest.
  uint32_t buf_alloc = 0;          // what we advertise
  uint32_t rx_cnt = 0;             // bytes received from the guest
  uint32_t fwd_cnt = 0;            // of those, bytes written to the host socket
  uint32_t last_sent_fwd_cnt = 0;  // the fwd_cnt the guest last heard from us
  // The guest's receive side: bytes to the guest.
  uint32_t peer_buf_alloc = 0;
  uint32_t peer_fwd_cnt = 0;
  uint32_t tx_cnt = 0;  // bytes sent to the guest

  // Bytes the guest can take now (0 when it shrank its buffer below what is in flight).
  uint32_t PeerFree() const;
  // Whether len more bytes from the guest are within the credit we gave.
  bool CanReceive(uint32_t len) const;
  // Bytes received from the guest but not yet written to the host.
  uint32_t Buffered() const { return rx_cnt - fwd_cnt; }

  void OnPeerHeader(uint32_t peer_alloc, uint32_t peer_fwd) {
    peer_buf_alloc = peer_alloc;
    peer_fwd_cnt = peer_fwd;
  }
  void OnReceived(uint32_t len) { rx_cnt += len; }
  void OnForwarded(uint32_t n) { fwd_cnt += n; }
  void OnSent(uint32_t len) { tx_cnt += len; }
  // A packet carrying our fwd_cnt went to the guest.
  void OnAdvertised() { last_sent_fwd_cnt = fwd_cnt; }
  // Whether to send a CREDIT_UPDATE: we freed space the guest does not know about, and the
  // space it believes it has is below half the buffer (so it may be waiting for credit).
  bool ShouldUpdatePeer() const;
};

// A fixed-capacity FIFO of bytes (the capacity is allocated on first use).
class ByteRing {
 public:
  explicit ByteRing(size_t capacity = 0) : cap_(capacity) {}
  size_t capacity() const { return cap_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t space() const { return cap_ - size_; }

  // Appends up to space() bytes of iov starting at byte offset; returns the count appended.
  size_t Push(const std::vector<iovec>& iov, size_t offset);
  size_t Push(const void* data, size_t n);
  // Up to two iovecs covering the bytes at the front.
  void Front(std::vector<iovec>* out) const;
  void Consume(size_t n);

 private:
  size_t cap_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t head_ = 0;  // index of the first byte
  size_t size_ = 0;
};

enum class ConnState {
  kConnecting,  // host-initiated: REQUEST to send or sent, waiting for the guest's RESPONSE
  kConnected,
  kClosing,    // the host side is gone: SHUTDOWN(both) to send or sent, waiting for RST
  kResetting,  // only an RST is left to send; then the connection is forgotten
};

const char* ConnStateName(ConnState s);

struct Connection {
  uint32_t host_port = 0;
  uint32_t guest_port = 0;
  bool host_initiated = false;
  ConnState state = ConnState::kConnecting;

  UniqueFd fd;  // the host unix socket; closed once the host side is done
  EventLoop::HandlerId handler = 0;
  EventLoop::TimerId timer = 0;

  Credit credit;

  // Packets owed to the guest.
  bool send_request = false;
  bool request_sent = false;
  bool send_response = false;
  bool send_rst = false;
  bool send_credit_update = false;
  uint32_t shutdown_to_send = 0;  // SHUTDOWN flags owed (cumulative)
  uint32_t shutdown_sent = 0;

  // The host socket, as far as we know (edge-triggered).
  bool host_readable = false;
  bool host_writable = true;
  bool host_eof = false;      // read returned 0: the host will send no more
  bool host_hup = false;      // the host closed its socket altogether
  bool host_wr_shut = false;  // we shut down the socket's write side

  uint32_t guest_shutdown = 0;  // SHUTDOWN flags the guest sent

  std::string preamble;  // "OK <port>\n", written to the host before any guest bytes
  ByteRing out;          // guest bytes the host socket has not taken yet

  bool queued = false;  // in the device's rx work list

  uint64_t key() const { return (static_cast<uint64_t>(host_port) << 32) | guest_port; }
  // Whether host data may go to the guest now (given a buffer to put it in).
  bool CanSendData() const;
  // Whether this connection has a packet for the guest.
  bool WantsRx() const;
  // The header every packet on this connection starts from.
  Header BaseHeader(uint64_t guest_cid) const;
};

inline uint64_t ConnKey(uint32_t host_port, uint32_t guest_port) {
  return (static_cast<uint64_t>(host_port) << 32) | guest_port;
}

}  // namespace kata::vsock
