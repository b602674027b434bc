#include "connection.h"

#include <algorithm>
#include <cstring>

namespace kata::vsock {

uint32_t Credit::PeerFree() const {
  const uint32_t in_flight = tx_cnt - peer_fwd_cnt;
  return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
}

bool Credit::CanReceive(uint32_t len) const {
  return static_cast<uint64_t>(Buffered()) + len <= buf_alloc;
}

bool Credit::ShouldUpdatePeer() const {
  if (fwd_cnt == last_sent_fwd_cnt) return false;
  const uint32_t believed_used = rx_cnt - last_sent_fwd_cnt;
  const uint32_t believed_free = believed_used >= buf_alloc ? 0 : buf_alloc - believed_used;
  return believed_free < buf_alloc / 2;
}

size_t ByteRing::Push(const void* data, size_t n) {
  iovec v = {const_cast<void*>(data), n};
  return Push(std::vector<iovec>{v}, 0);
}

size_t ByteRing::Push(const std::vector<iovec>& iov, size_t offset) {
  if (cap_ == 0) return 0;
  if (!buf_) buf_ = std::make_unique<uint8_t[]>(cap_);
  size_t done = 0;
  for (const iovec& v : iov) {
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    const auto* src = static_cast<const uint8_t*>(v.iov_base) + offset;
    size_t n = std::min(v.iov_len - offset, space());
    offset = 0;
    while (n > 0) {
      const size_t tail = (head_ + size_) % cap_;
      const size_t k = std::min(n, cap_ - tail);
      memcpy(buf_.get() + tail, src, k);
      src += k;
      n -= k;
      size_ += k;
      done += k;
    }
    if (space() == 0) break;
  }
  return done;
}

void ByteRing::Front(std::vector<iovec>* out) const {
  if (size_ == 0) return;
  const size_t first = std::min(size_, cap_ - head_);
  out->push_back({buf_.get() + head_, first});
  if (first < size_) out->push_back({buf_.get(), size_ - first});
}

void ByteRing::Consume(size_t n) {
  n = std::min(n, size_);
  head_ = (head_ + n) % cap_;
  size_ -= n;
  if (size_ == 0) head_ = 0;
}

const char* ConnStateName(ConnState s) {
  switch (s) {
    case ConnState::kConnecting:
      return "connecting";
    case ConnState::kConnected:
      return "connected";
    case ConnState::kClosing:
      return "closing";
    case ConnState::kResetting:
      return "resetting";
  }
  return "?";
}

bool Connection::CanSendData() const {
  return state == ConnState::kConnected && fd.valid() && host_readable && !host_eof &&
         !(guest_shutdown & kShutdownRcv) && credit.PeerFree() > 0;
}

bool Connection::WantsRx() const {
  if (state == ConnState::kResetting) return send_rst;
  if (state == ConnState::kConnecting) return send_request;
  return send_response || send_rst || (shutdown_to_send & ~shutdown_sent) || send_credit_update ||
         credit.ShouldUpdatePeer() || CanSendData();
}

Header Connection::BaseHeader(uint64_t guest_cid) const {
  Header h;
  h.src_cid = kHostCid;
  h.dst_cid = guest_cid;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.type = kTypeStream;
  h.buf_alloc = credit.buf_alloc;
  h.fwd_cnt = credit.fwd_cnt;
  return h;
}

}  // namespace kata::vsock
