#include "vsock_device.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "iov.h"
#include "util/log.h"

namespace kata::vsock {
namespace {

ssize_t SendIov(int fd, const std::vector<iovec>& iov) {
  struct msghdr m = {};
  m.msg_iov = const_cast<iovec*>(iov.data());
  m.msg_iovlen = std::min<size_t>(iov.size(), IOV_MAX);
  for (;;) {
    ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace

VsockDevice::VsockDevice(EventLoop* loop, VsockOptions opts, Dialer dial)
    : loop_(loop), opts_(opts), dial_(std::move(dial)) {}

VsockDevice::~VsockDevice() {
  for (auto& [key, c] : conns_) {
    if (c->handler) loop_->Remove(c->handler);
    if (c->timer) loop_->Cancel(c->timer);
  }
}

std::vector<uint8_t> VsockDevice::Config() const {
  // struct virtio_vsock_config { le64 guest_cid; }
  std::vector<uint8_t> cfg(8);
  for (int i = 0; i < 8; ++i) cfg[i] = static_cast<uint8_t>(opts_.guest_cid >> (8 * i));
  return cfg;
}

void VsockDevice::Attach(const GuestMemory* mem, std::vector<Virtqueue>* queues) {
  mem_ = mem;
  queues_ = queues;
}

Virtqueue* VsockDevice::rx() const {
  return queues_ && queues_->size() > kRxQueue ? &(*queues_)[kRxQueue] : nullptr;
}
Virtqueue* VsockDevice::tx() const {
  return queues_ && queues_->size() > kTxQueue ? &(*queues_)[kTxQueue] : nullptr;
}

void VsockDevice::QueueKicked(size_t index) {
  if (index == kTxQueue) ProcessTx();
  // rx: new buffers; Flush (end of this batch) fills them.
}

void VsockDevice::QueuesChanged() { ProcessTx(); }

void VsockDevice::Reset(std::string_view why) {
  if (!conns_.empty() || !rst_replies_.empty()) {
    log::Info("dropping all vsock connections").Kv("reason", why).Kv("connections", conns_.size());
  }
  for (auto& [key, c] : conns_) {
    if (c->handler) loop_->Remove(c->handler);
    if (c->timer) loop_->Cancel(c->timer);
  }
  conns_.clear();
  rx_work_.clear();
  rst_replies_.clear();
  tx_pending_ = false;
}

Connection* VsockDevice::Lookup(uint64_t key) {
  auto it = conns_.find(key);
  return it == conns_.end() ? nullptr : it->second.get();
}

const Connection* VsockDevice::Find(uint32_t host_port, uint32_t guest_port) const {
  auto it = conns_.find(ConnKey(host_port, guest_port));
  return it == conns_.end() ? nullptr : it->second.get();
}

void VsockDevice::Schedule(Connection* c) {
  if (!c->queued && c->WantsRx()) {
    c->queued = true;
    rx_work_.push_back(c->key());
  }
}

StatusOr<Connection*> VsockDevice::NewConnection(uint32_t host_port, uint32_t guest_port,
                                                 UniqueFd fd) {
  auto c = std::make_unique<Connection>();
  c->host_port = host_port;
  c->guest_port = guest_port;
  c->credit.buf_alloc = opts_.buf_alloc;
  c->out = ByteRing(opts_.buf_alloc);
  const uint64_t key = c->key();
  ASSIGN_OR_RETURN(c->handler, loop_->Add(fd.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                          [this, key](uint32_t ev) { OnHostEvent(key, ev); }));
  c->fd = std::move(fd);
  Connection* raw = c.get();
  conns_[key] = std::move(c);
  return raw;
}

uint32_t VsockDevice::AllocHostPort(uint32_t guest_port) {
  // Host ports of host-initiated connections, as Firecracker does: from 2^30 up, wrapping.
  for (;;) {
    uint32_t p = next_host_port_++;
    if (next_host_port_ == 0) next_host_port_ = 1u << 30;
    if (!conns_.count(ConnKey(p, guest_port))) return p;
  }
}

void VsockDevice::ConnectToGuest(UniqueFd fd, uint32_t port) {
  if (conns_.size() >= opts_.max_connections) {
    log::Warn("too many vsock connections; refusing a host client").Kv("port", port);
    return;
  }
  const uint32_t host_port = AllocHostPort(port);
  auto c = NewConnection(host_port, port, std::move(fd));
  if (!c.ok()) {
    log::Error("cannot watch a host client").Kv("error", c.status().ToString());
    return;
  }
  Connection* conn = *c;
  conn->host_initiated = true;
  conn->state = ConnState::kConnecting;
  conn->send_request = true;
  const uint64_t key = conn->key();
  conn->timer = loop_->After(opts_.connect_timeout_ms, [this, key] {
    Connection* c = Lookup(key);
    if (c == nullptr || c->state != ConnState::kConnecting) return;
    c->timer = 0;
    Abort(c, "the guest did not answer the connection request in time");
  });
  log::Debug("host client connecting").Kv("guest_port", port).Kv("host_port", host_port);
  Schedule(conn);
}

// ---- guest -> host: the tx queue ----

void VsockDevice::ProcessTx() {
  Virtqueue* q = tx();
  if (q == nullptr || !q->ready() || mem_ == nullptr) return;
  tx_pending_ = false;
  std::vector<iovec> payload;
  for (;;) {
    if (rst_replies_.size() >= kMaxRstReplies) {
      // The guest is not taking its replies: stop reading what would make more.
      tx_pending_ = true;
      break;
    }
    auto r = q->Peek(*mem_, &chain_);
    if (r == Virtqueue::Peeked::kEmpty) {
      if (q->EnableKicks()) continue;
      break;
    }
    if (r == Virtqueue::Peeked::kBroken) {
      log::Error("tx queue is broken (bad avail index or head); ignoring it until reset");
      break;
    }
    if (r == Virtqueue::Peeked::kBadChain) {
      log::Warn("malformed tx descriptor chain dropped").Kv("head", chain_.head);
    } else {
      uint8_t hb[kHeaderSize];
      if (IovCopyOut(chain_.out, 0, hb, kHeaderSize) < kHeaderSize) {
        log::Warn("tx packet shorter than a header dropped").Kv("len", chain_.out_len);
      } else {
        Header h = DecodeHeader(hb);
        payload.clear();
        if (h.op == kOpRw && IovSlice(chain_.out, kHeaderSize, h.len, &payload) < h.len) {
          log::Warn("tx packet shorter than its header says dropped").Kv("len", h.len);
        } else {
          if (h.op != kOpRw) h.len = 0;
          HandlePacket(h, payload);
        }
      }
    }
    // The payload was consumed above (written or copied); the buffer goes back now.
    q->Consume();
    q->PushUsed(chain_.head, 0);
  }
}

void VsockDevice::ReplyRst(const Header& h) {
  if (rst_replies_.size() >= kMaxRstReplies) return;
  Header r;
  r.src_cid = kHostCid;
  r.dst_cid = opts_.guest_cid;
  r.src_port = h.dst_port;
  r.dst_port = h.src_port;
  r.type = h.type;
  r.op = kOpRst;
  rst_replies_.push_back(r);
}

void VsockDevice::HandlePacket(const Header& h, const std::vector<iovec>& payload) {
  if (log::Enabled(log::Level::kDebug)) log::Debug("from guest").Kv("pkt", Describe(h));
  if (h.src_cid != opts_.guest_cid) {
    log::Warn("tx packet with a foreign source CID dropped").Kv("src_cid", h.src_cid);
    return;
  }
  if (h.dst_cid != kHostCid || h.type != kTypeStream) {
    if (h.op != kOpRst) ReplyRst(h);
    return;
  }
  Connection* c = Lookup(ConnKey(h.dst_port, h.src_port));
  if (c == nullptr) {
    if (h.op == kOpRequest) {
      HandleRequest(h);
    } else if (h.op != kOpRst) {
      ReplyRst(h);
    }
    return;
  }
  c->credit.OnPeerHeader(h.buf_alloc, h.fwd_cnt);

  switch (c->state) {
    case ConnState::kResetting:
      return;
    case ConnState::kClosing:
      if (h.op == kOpRst) {
        Destroy(c, "closed");
        return;
      }
      if (h.op == kOpRw) {  // nobody to read it: consumed all the same
        c->credit.OnReceived(h.len);
        c->credit.OnForwarded(h.len);
      }
      if (h.op == kOpShutdown) {
        c->state = ConnState::kResetting;
        c->send_rst = true;
      }
      Schedule(c);
      return;
    case ConnState::kConnecting:
      if (h.op == kOpResponse && c->request_sent) {
        c->state = ConnState::kConnected;
        if (c->timer) loop_->Cancel(c->timer);
        c->timer = 0;
        c->preamble = StrCat("OK ", c->host_port, "\n");
        log::Debug("guest accepted").Kv("guest_port", c->guest_port).Kv("host_port", c->host_port);
        FlushToHost(c);
        Schedule(c);
      } else if (h.op == kOpRst) {
        log::Debug("guest refused").Kv("guest_port", c->guest_port);
        Destroy(c, "refused by the guest");
      } else {
        Abort(c, "unexpected packet while connecting");
      }
      return;
    case ConnState::kConnected:
      break;
  }

  switch (h.op) {
    case kOpRw:
      HandleRw(c, h, payload);
      break;
    case kOpShutdown:
      HandleShutdown(c, h.flags);
      break;
    case kOpRst:
      FlushToHost(c);  // best effort: what the socket takes now
      Destroy(c, "reset by the guest");
      return;
    case kOpCreditUpdate:
      break;  // the header already updated the guest's credit
    case kOpCreditRequest:
      c->send_credit_update = true;
      break;
    default:
      Abort(c, StrCat("unexpected ", OpName(h.op), " on a connected stream"));
      return;
  }
  Schedule(c);
}

void VsockDevice::HandleRequest(const Header& h) {
  if (conns_.size() >= opts_.max_connections) {
    log::Warn("too many vsock connections; refusing the guest").Kv("port", h.dst_port);
    ReplyRst(h);
    return;
  }
  auto fd = dial_(h.dst_port);
  if (!fd.ok()) {
    log::Debug("no host listener for a guest connection")
        .Kv("port", h.dst_port)
        .Kv("error", fd.status().ToString());
    ReplyRst(h);
    return;
  }
  auto c = NewConnection(h.dst_port, h.src_port, std::move(*fd));
  if (!c.ok()) {
    ReplyRst(h);
    return;
  }
  Connection* conn = *c;
  conn->state = ConnState::kConnected;
  conn->credit.OnPeerHeader(h.buf_alloc, h.fwd_cnt);
  conn->send_response = true;
  log::Debug("guest connected to the host").Kv("port", h.dst_port).Kv("guest_port", h.src_port);
  Schedule(conn);
}

void VsockDevice::HandleRw(Connection* c, const Header& h, const std::vector<iovec>& payload) {
  if (c->guest_shutdown & kShutdownSend) {
    Abort(c, "data after the guest's SHUTDOWN");
    return;
  }
  if (!c->credit.CanReceive(h.len)) {
    Abort(c, StrCat("the guest sent beyond its credit (", h.len, " bytes, ", c->credit.Buffered(),
                    " buffered of ", c->credit.buf_alloc, ")"));
    return;
  }
  c->credit.OnReceived(h.len);
  if (!c->fd.valid() || c->host_wr_shut) {
    c->credit.OnForwarded(h.len);  // the host can take nothing more: dropped, but consumed
    return;
  }
  size_t done = 0;
  if (c->out.empty() && c->preamble.empty() && c->host_writable) {
    ssize_t n = SendIov(c->fd.get(), payload);
    if (n < 0) {
      if (!WouldBlock(errno)) {
        Abort(c, StrCat("write to the host socket: ", ErrnoText(errno)));
        return;
      }
      n = 0;
    }
    done = static_cast<size_t>(n);
    c->credit.OnForwarded(static_cast<uint32_t>(done));
    if (done < h.len) c->host_writable = false;
  }
  if (done < h.len) {
    // Fits: out holds at most Buffered() <= buf_alloc bytes, checked above.
    c->out.Push(payload, done);
  }
}

void VsockDevice::HandleShutdown(Connection* c, uint32_t flags) {
  c->guest_shutdown |= flags & kShutdownBoth;
  Settle(c);
}

// ---- host socket events ----

void VsockDevice::OnHostEvent(uint64_t key, uint32_t events) {
  Connection* c = Lookup(key);
  if (c == nullptr) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->host_readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->host_writable = true;
  if (events & EPOLLHUP) c->host_hup = true;
  if (c->state == ConnState::kConnecting) {
    if (events & (EPOLLHUP | EPOLLERR)) Abort(c, "the host client left before the guest accepted");
    return;
  }
  if (c->state != ConnState::kConnected) return;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
    FlushToHost(c);
    if (c->state != ConnState::kConnected) return;
  }
  if (c->host_hup && c->host_eof) HostGone(c);
  Schedule(c);
}

void VsockDevice::FlushToHost(Connection* c) {
  if (!c->fd.valid()) return;
  std::vector<iovec> iov;
  while (c->host_writable && (!c->preamble.empty() || !c->out.empty())) {
    iov.clear();
    if (!c->preamble.empty()) iov.push_back({c->preamble.data(), c->preamble.size()});
    c->out.Front(&iov);
    ssize_t n = SendIov(c->fd.get(), iov);
    if (n < 0) {
      if (WouldBlock(errno)) {
        c->host_writable = false;
        break;
      }
      Abort(c, StrCat("write to the host socket: ", ErrnoText(errno)));
      return;
    }
    size_t k = static_cast<size_t>(n);
    const size_t from_preamble = std::min(k, c->preamble.size());
    c->preamble.erase(0, from_preamble);
    k -= from_preamble;
    c->out.Consume(k);
    c->credit.OnForwarded(static_cast<uint32_t>(k));
  }
  Settle(c);
}

void VsockDevice::Settle(Connection* c) {
  if (c->state != ConnState::kConnected) return;
  const bool drained = c->out.empty() && c->preamble.empty();
  if (!drained) return;
  if ((c->guest_shutdown & kShutdownSend) && c->fd.valid() && !c->host_wr_shut) {
    shutdown(c->fd.get(), SHUT_WR);
    c->host_wr_shut = true;
  }
  if (c->guest_shutdown == kShutdownBoth) {
    // The guest is done both ways and has all its data delivered: acknowledge with RST.
    CloseHost(c);
    c->state = ConnState::kResetting;
    c->send_rst = true;
    Schedule(c);
    return;
  }
  if (c->host_eof && c->host_wr_shut) HostGone(c);  // nothing can flow either way any more
}

void VsockDevice::HostGone(Connection* c) {
  CloseHost(c);
  if (c->guest_shutdown == kShutdownBoth) {
    c->state = ConnState::kResetting;
    c->send_rst = true;
    Schedule(c);
    return;
  }
  // Tell the guest, and wait (a while) for its RST, as the spec's clean close asks.
  c->state = ConnState::kClosing;
  c->shutdown_to_send = kShutdownBoth;
  const uint64_t key = c->key();
  if (c->timer) loop_->Cancel(c->timer);
  c->timer = loop_->After(opts_.close_timeout_ms, [this, key] {
    Connection* c = Lookup(key);
    if (c == nullptr || c->state != ConnState::kClosing) return;
    c->timer = 0;
    c->state = ConnState::kResetting;
    c->send_rst = true;
    Schedule(c);
  });
  Schedule(c);
}

void VsockDevice::CloseHost(Connection* c) {
  if (c->handler) loop_->Remove(c->handler);
  c->handler = 0;
  c->fd.reset();
  c->preamble.clear();
  c->out = ByteRing();
}

void VsockDevice::Abort(Connection* c, std::string_view why) {
  log::Info("vsock connection reset")
      .Kv("reason", why)
      .Kv("host_port", c->host_port)
      .Kv("guest_port", c->guest_port)
      .Kv("state", ConnStateName(c->state));
  CloseHost(c);
  if (c->state == ConnState::kConnecting && !c->request_sent) {
    Destroy(c, why);
    return;
  }
  c->state = ConnState::kResetting;
  c->send_rst = true;
  Schedule(c);
}

void VsockDevice::Destroy(Connection* c, std::string_view why) {
  log::Debug("vsock connection closed")
      .Kv("reason", why)
      .Kv("host_port", c->host_port)
      .Kv("guest_port", c->guest_port);
  CloseHost(c);
  if (c->timer) loop_->Cancel(c->timer);
  conns_.erase(c->key());
}

// ---- host -> guest: the rx queue ----

size_t VsockDevice::FillOne(Connection* c, const DescChain& chain) {
  const size_t room = chain.in_len - kHeaderSize;
  Header h = c->BaseHeader(opts_.guest_cid);
  if (c->state == ConnState::kConnected && !c->send_response && !c->send_rst && c->CanSendData() &&
      room > 0) {
    const size_t cap = std::min<size_t>({room, c->credit.PeerFree(), opts_.max_packet_payload});
    std::vector<iovec> iov;
    IovSlice(chain.in, kHeaderSize, cap, &iov);
    ssize_t n;
    do {
      n = readv(c->fd.get(), iov.data(), static_cast<int>(iov.size()));
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      h.op = kOpRw;
      h.len = static_cast<uint32_t>(n);
      c->credit.OnSent(h.len);
    } else if (n == 0) {
      c->host_eof = true;
      c->shutdown_to_send |= kShutdownSend;
      if (c->host_hup) {
        HostGone(c);
      } else {
        Settle(c);
      }
    } else if (WouldBlock(errno)) {
      c->host_readable = false;
    } else {
      Abort(c, StrCat("read from the host socket: ", ErrnoText(errno)));
    }
  }
  if (h.op != kOpRw) {
    if (c->state == ConnState::kConnecting) {
      if (!c->send_request) return 0;
      h.op = kOpRequest;
      c->send_request = false;
      c->request_sent = true;
    } else if (c->send_response) {
      h.op = kOpResponse;
      c->send_response = false;
    } else if (c->send_rst) {
      h.op = kOpRst;
    } else if (c->shutdown_to_send & ~c->shutdown_sent) {
      h.op = kOpShutdown;
      h.flags = c->shutdown_to_send;
      c->shutdown_sent = c->shutdown_to_send;
    } else if (c->send_credit_update || c->credit.ShouldUpdatePeer() ||
               (room == 0 && c->CanSendData())) {
      h.op = kOpCreditUpdate;
    } else {
      return 0;
    }
  }
  h.fwd_cnt = c->credit.fwd_cnt;
  uint8_t hb[kHeaderSize];
  EncodeHeader(h, hb);
  IovCopyIn(chain.in, 0, hb, kHeaderSize);
  c->credit.OnAdvertised();
  c->send_credit_update = false;
  if (log::Enabled(log::Level::kDebug)) log::Debug("to guest").Kv("pkt", Describe(h));
  if (h.op == kOpRst) Destroy(c, "reset sent");
  return kHeaderSize + h.len;
}

void VsockDevice::FillRx() {
  Virtqueue* q = rx();
  if (q == nullptr || !q->ready() || mem_ == nullptr) return;
  // A bound on one pass, so a busy device still returns to the loop; more work wakes it.
  size_t budget = 4 * static_cast<size_t>(q->num());
  while (!rst_replies_.empty() || !rx_work_.empty()) {
    if (budget-- == 0) {
      loop_->After(0, [] {});
      break;
    }
    auto r = q->Peek(*mem_, &chain_);
    if (r == Virtqueue::Peeked::kEmpty) {
      if (q->EnableKicks()) continue;
      break;  // the guest's rx kick brings us back
    }
    if (r == Virtqueue::Peeked::kBroken) {
      log::Error("rx queue is broken (bad avail index or head); ignoring it until reset");
      break;
    }
    if (r == Virtqueue::Peeked::kBadChain || chain_.in_len < kHeaderSize) {
      log::Warn("unusable rx descriptor chain dropped").Kv("head", chain_.head);
      q->Consume();
      q->PushUsed(chain_.head, 0);
      continue;
    }
    size_t written = 0;
    if (!rst_replies_.empty()) {
      uint8_t hb[kHeaderSize];
      EncodeHeader(rst_replies_.front(), hb);
      rst_replies_.pop_front();
      IovCopyIn(chain_.in, 0, hb, kHeaderSize);
      written = kHeaderSize;
    } else {
      const uint64_t key = rx_work_.front();
      rx_work_.pop_front();
      Connection* c = Lookup(key);
      if (c == nullptr) continue;
      c->queued = false;
      written = FillOne(c, chain_);
      if (Connection* again = Lookup(key)) Schedule(again);
      if (written == 0) continue;  // the same chain is offered to the next connection
    }
    q->Consume();
    q->PushUsed(chain_.head, static_cast<uint32_t>(written));
  }
}

void VsockDevice::Flush() {
  for (int round = 0; round < 4; ++round) {
    FillRx();
    if (!tx_pending_ || rst_replies_.size() >= kMaxRstReplies) break;
    ProcessTx();
  }
  if (Virtqueue* q = rx()) q->Signal();
  if (Virtqueue* q = tx()) q->Signal();
}

}  // namespace kata::vsock
