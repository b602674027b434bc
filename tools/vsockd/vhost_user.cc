#include "vhost_user.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

namespace kata::vsock {
namespace {

constexpr uint64_t kVringIndexMask = 0xff;
constexpr uint64_t kVringNoFd = 1ull << 8;

const char* RequestName(uint32_t r) {
  switch (r) {
    case kGetFeatures:
      return "GET_FEATURES";
    case kSetFeatures:
      return "SET_FEATURES";
    case kSetOwner:
      return "SET_OWNER";
    case kResetOwner:
      return "RESET_OWNER";
    case kSetMemTable:
      return "SET_MEM_TABLE";
    case kSetLogBase:
      return "SET_LOG_BASE";
    case kSetLogFd:
      return "SET_LOG_FD";
    case kSetVringNum:
      return "SET_VRING_NUM";
    case kSetVringAddr:
      return "SET_VRING_ADDR";
    case kSetVringBase:
      return "SET_VRING_BASE";
    case kGetVringBase:
      return "GET_VRING_BASE";
    case kSetVringKick:
      return "SET_VRING_KICK";
    case kSetVringCall:
      return "SET_VRING_CALL";
    case kSetVringErr:
      return "SET_VRING_ERR";
    case kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum:
      return "GET_QUEUE_NUM";
    case kSetVringEnable:
      return "SET_VRING_ENABLE";
    case kGetConfig:
      return "GET_CONFIG";
    case kSetConfig:
      return "SET_CONFIG";
    case kGetMaxMemSlots:
      return "GET_MAX_MEM_SLOTS";
    case kAddMemReg:
      return "ADD_MEM_REG";
    case kRemMemReg:
      return "REM_MEM_REG";
  }
  return "UNKNOWN";
}

Status ReadFull(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "read vhost-user payload");
    if (r == 0) return absl::UnavailableError("vhost-user front-end closed mid-message");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

RegionDesc ReadRegion(const VhostUserMsg& m, size_t off) {
  RegionDesc d;
  d.gpa = m.Get<uint64_t>(off);
  d.size = m.Get<uint64_t>(off + 8);
  d.uva = m.Get<uint64_t>(off + 16);
  d.mmap_offset = m.Get<uint64_t>(off + 24);
  return d;
}

Status NeedSize(const VhostUserMsg& m, uint32_t size) {
  if (m.size < size) {
    return absl::InvalidArgumentError(
        StrCat(RequestName(m.request), ": payload of ", m.size, " bytes, expected ", size));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<bool> ReadVhostUserMsg(int fd, VhostUserMsg* m) {
  uint8_t hdr[VhostUserMsg::kHeaderSize];
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * VhostUserMsg::kMaxFds)];
  struct iovec iov = {hdr, sizeof hdr};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, "read vhost-user message");
  m->fds.clear();
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int f;
        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
        m->fds.emplace_back(f);
      }
    }
  }
  if (n == 0) return false;
  if (static_cast<size_t>(n) < sizeof hdr) {
    RETURN_IF_ERROR(ReadFull(fd, hdr + n, sizeof hdr - static_cast<size_t>(n)));
  }
  if (mh.msg_flags & MSG_CTRUNC) return absl::InvalidArgumentError("too many fds in a message");
  memcpy(&m->request, hdr, 4);
  memcpy(&m->flags, hdr + 4, 4);
  memcpy(&m->size, hdr + 8, 4);
  if (m->size > VhostUserMsg::kMaxPayload) {
    return absl::InvalidArgumentError(
        StrCat("vhost-user message ", m->request, " with a payload of ", m->size, " bytes"));
  }
  RETURN_IF_ERROR(ReadFull(fd, m->payload, m->size));
  return true;
}

Status WriteVhostUserMsg(int fd, uint32_t request, uint32_t flags, const void* payload,
                         uint32_t size, const std::vector<int>& fds) {
  uint8_t hdr[VhostUserMsg::kHeaderSize];
  memcpy(hdr, &request, 4);
  memcpy(hdr + 4, &flags, 4);
  memcpy(hdr + 8, &size, 4);
  struct iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<void*>(payload), size}};
  struct msghdr mh = {};
  mh.msg_iov = iov;
  mh.msg_iovlen = size > 0 ? 2 : 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * VhostUserMsg::kMaxFds)];
  if (!fds.empty()) {
    if (fds.size() > VhostUserMsg::kMaxFds) return absl::InvalidArgumentError("too many fds");
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const size_t total = sizeof hdr + size;
  ssize_t n;
  do {
    n = sendmsg(fd, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, "write vhost-user message");
  if (static_cast<size_t>(n) != total) return absl::UnavailableError("short vhost-user write");
  return absl::OkStatus();
}

// ---- session ----

VhostUserSession::VhostUserSession(EventLoop* loop, VirtioDevice* device, VhostUserOptions opts)
    : loop_(loop), device_(device), opts_(opts) {
  queues_.resize(device_->NumQueues());
  kick_handlers_.resize(queues_.size());
  stopped_at_.resize(queues_.size());
  device_->Attach(&mem_, &queues_);
}

VhostUserSession::~VhostUserSession() {
  for (auto& h : kick_handlers_) {
    if (h) loop_->Remove(h);
  }
  device_->Reset("the vhost-user front-end disconnected");
  device_->Attach(nullptr, nullptr);
}

uint64_t VhostUserSession::OfferedFeatures() const {
  return kVirtioFVersion1 | kVhostUserFProtocolFeatures | kVirtioRingFEventIdx |
         kVirtioRingFIndirectDesc | device_->DeviceFeatures();
}

uint64_t VhostUserSession::OfferedProtocolFeatures() const {
  return kProtocolMq | kProtocolReplyAck | kProtocolConfig |
         (opts_.offer_mem_slots ? kProtocolConfigureMemSlots : 0);
}

StatusOr<Virtqueue*> VhostUserSession::Queue(uint32_t index) {
  if (index >= queues_.size()) {
    return absl::InvalidArgumentError(
        StrCat("no queue ", index, " (the device has ", queues_.size(), ")"));
  }
  return &queues_[index];
}

Status VhostUserSession::Handle(VhostUserMsg& m, int sock) {
  if (log::Enabled(log::Level::kDebug)) {
    log::Debug("vhost-user message")
        .Kv("request", RequestName(m.request))
        .Kv("size", m.size)
        .Kv("fds", m.fds.size());
  }
  bool replied = false;
  Status st = Dispatch(m, sock, &replied);
  if (!st.ok() && absl::IsUnavailable(st)) return st;  // the socket itself failed
  if (!st.ok()) {
    log::Warn("vhost-user request failed")
        .Kv("request", RequestName(m.request))
        .Kv("error", st.ToString());
  }
  if (!replied && (m.flags & kFlagNeedReply) && (protocol_features_ & kProtocolReplyAck)) {
    const uint64_t v = st.ok() ? 0 : 1;
    RETURN_IF_ERROR(WriteVhostUserMsg(sock, m.request, kVhostUserVersion | kFlagReply, &v, 8));
    return absl::OkStatus();
  }
  // Without REPLY_ACK the front-end cannot be told; a broken table or ring is fatal.
  if (!st.ok() && (m.request == kSetMemTable || m.request == kAddMemReg)) return st;
  return absl::OkStatus();
}

Status VhostUserSession::Dispatch(VhostUserMsg& m, int sock, bool* replied) {
  auto reply_u64 = [&](uint64_t v) {
    *replied = true;
    Status st = WriteVhostUserMsg(sock, m.request, kVhostUserVersion | kFlagReply, &v, 8);
    return st.ok() ? st : absl::UnavailableError(st.message());
  };
  switch (m.request) {
    case kGetFeatures:
      return reply_u64(OfferedFeatures());
    case kSetFeatures: {
      RETURN_IF_ERROR(NeedSize(m, 8));
      const uint64_t f = m.Get<uint64_t>(0);
      if (f & ~OfferedFeatures()) {
        return absl::InvalidArgumentError(StrCat("features ", f, " not offered"));
      }
      if (f != acked_features_) {
        log::Info("virtio features negotiated")
            .Kv("event_idx", (f & kVirtioRingFEventIdx) != 0)
            .Kv("indirect_desc", (f & kVirtioRingFIndirectDesc) != 0)
            .Kv("version_1", (f & kVirtioFVersion1) != 0);
      }
      acked_features_ = f;
      for (Virtqueue& q : queues_) {
        q.SetFeatures(f);
        // Without protocol features a ring is enabled as soon as it starts.
        if (!(f & kVhostUserFProtocolFeatures)) q.set_enabled(true);
      }
      return absl::OkStatus();
    }
    case kGetProtocolFeatures:
      return reply_u64(OfferedProtocolFeatures());
    case kSetProtocolFeatures:
      RETURN_IF_ERROR(NeedSize(m, 8));
      protocol_features_ = m.Get<uint64_t>(0) & OfferedProtocolFeatures();
      return absl::OkStatus();
    case kGetQueueNum:
      return reply_u64(queues_.size());
    case kGetMaxMemSlots:
      return reply_u64(opts_.max_mem_slots);
    case kSetOwner:
    case kResetOwner:  // deprecated; nothing to do
      return absl::OkStatus();
    case kSetMemTable:
      return SetMemTable(m);
    case kAddMemReg:
      return AddMemReg(m);
    case kRemMemReg:
      return RemMemReg(m);
    case kSetVringNum: {
      RETURN_IF_ERROR(NeedSize(m, 8));
      ASSIGN_OR_RETURN(Virtqueue * q, Queue(m.Get<uint32_t>(0)));
      RETURN_IF_ERROR(q->SetNum(m.Get<uint32_t>(4)));
      if (q->has_addrs()) (void)q->Map(mem_);
      return absl::OkStatus();
    }
    case kSetVringAddr: {
      // struct vhost_vring_addr: index, flags, desc, used, avail, log (user addresses).
      RETURN_IF_ERROR(NeedSize(m, 40));
      ASSIGN_OR_RETURN(Virtqueue * q, Queue(m.Get<uint32_t>(0)));
      RingAddrs a;
      a.desc = m.Get<uint64_t>(8);
      a.used = m.Get<uint64_t>(16);
      a.avail = m.Get<uint64_t>(24);
      q->SetAddrs(a);
      Status st = q->Map(mem_);
      device_->QueuesChanged();
      return st;
    }
    case kSetVringBase: {
      RETURN_IF_ERROR(NeedSize(m, 8));
      const uint32_t i = m.Get<uint32_t>(0);
      ASSIGN_OR_RETURN(Virtqueue * q, Queue(i));
      const uint16_t base = static_cast<uint16_t>(m.Get<uint32_t>(4));
      if (stopped_at_[i] && *stopped_at_[i] != base) {
        // The driver starts over: whatever connections the guest had are gone with it.
        device_->Reset("the guest reset the device");
        for (auto& s : stopped_at_) s.reset();
      }
      stopped_at_[i].reset();
      q->SetBase(base);
      return absl::OkStatus();
    }
    case kGetVringBase: {
      RETURN_IF_ERROR(NeedSize(m, 8));
      const uint32_t i = m.Get<uint32_t>(0);
      ASSIGN_OR_RETURN(Virtqueue * q, Queue(i));
      StopQueue(i);
      stopped_at_[i] = q->last_avail();
      uint32_t state[2] = {i, q->last_avail()};
      *replied = true;
      Status st = WriteVhostUserMsg(sock, m.request, kVhostUserVersion | kFlagReply, state, 8);
      device_->QueuesChanged();
      return st.ok() ? st : absl::UnavailableError(st.message());
    }
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr:
      return SetVringFd(m);
    case kSetVringEnable: {
      RETURN_IF_ERROR(NeedSize(m, 8));
      ASSIGN_OR_RETURN(Virtqueue * q, Queue(m.Get<uint32_t>(0)));
      q->set_enabled(m.Get<uint32_t>(4) != 0);
      device_->QueuesChanged();
      return absl::OkStatus();
    }
    case kGetConfig:
      return GetConfig(m, sock);
    case kSetConfig:
      return absl::PermissionDeniedError("the vsock config space is read-only");
    default:
      return absl::UnimplementedError(
          StrCat("unsupported vhost-user request ", m.request, " (", RequestName(m.request), ")"));
  }
}

Status VhostUserSession::SetMemTable(VhostUserMsg& m) {
  RETURN_IF_ERROR(NeedSize(m, 8));
  const uint32_t n = m.Get<uint32_t>(0);
  RETURN_IF_ERROR(NeedSize(m, 8 + 32 * n));
  if (n != m.fds.size()) {
    return absl::InvalidArgumentError(
        StrCat("SET_MEM_TABLE: ", n, " regions but ", m.fds.size(), " fds"));
  }
  // Build the new table aside; the old one stays in use until the new one is complete.
  GuestMemory fresh;
  for (uint32_t i = 0; i < n; ++i) {
    RegionDesc d = ReadRegion(m, 8 + 32 * i);
    ASSIGN_OR_RETURN(GuestMemory::Region r, GuestMemory::Map(d, m.fds[i].get()));
    RETURN_IF_ERROR(fresh.Add(std::move(r)));
  }
  m.fds.clear();  // the mappings keep the memory; the fds are not needed
  std::swap(mem_, fresh);
  RemapQueues();
  fresh.Clear();  // unmaps the old table: no pointer into it is left
  log::Info("guest memory mapped").Kv("regions", n);
  device_->QueuesChanged();
  return absl::OkStatus();
}

Status VhostUserSession::AddMemReg(VhostUserMsg& m) {
  RETURN_IF_ERROR(NeedSize(m, 40));
  if (m.fds.size() != 1) return absl::InvalidArgumentError("ADD_MEM_REG without exactly one fd");
  if (mem_.num_regions() >= opts_.max_mem_slots) {
    return absl::ResourceExhaustedError("no free memory slot");
  }
  ASSIGN_OR_RETURN(GuestMemory::Region r, GuestMemory::Map(ReadRegion(m, 8), m.fds[0].get()));
  m.fds.clear();
  RETURN_IF_ERROR(mem_.Add(std::move(r)));
  RemapQueues();
  device_->QueuesChanged();
  return absl::OkStatus();
}

Status VhostUserSession::RemMemReg(VhostUserMsg& m) {
  RETURN_IF_ERROR(NeedSize(m, 40));
  m.fds.clear();  // tolerated, and closed unused, as the spec allows
  RegionDesc d = ReadRegion(m, 8);
  if (!mem_.Remove(d.gpa, d.uva, d.size)) {
    return absl::NotFoundError(StrCat("REM_MEM_REG: no region gpa=", d.gpa, " size=", d.size));
  }
  RemapQueues();
  device_->QueuesChanged();
  return absl::OkStatus();
}

void VhostUserSession::RemapQueues() {
  for (size_t i = 0; i < queues_.size(); ++i) {
    Virtqueue& q = queues_[i];
    if (!q.has_addrs() || q.num() == 0) continue;
    Status st = q.Map(mem_);
    if (!st.ok()) log::Warn("queue not in guest memory").Kv("queue", i).Kv("error", st.ToString());
  }
}

Status VhostUserSession::SetVringFd(VhostUserMsg& m) {
  RETURN_IF_ERROR(NeedSize(m, 8));
  const uint64_t v = m.Get<uint64_t>(0);
  const size_t i = v & kVringIndexMask;
  ASSIGN_OR_RETURN(Virtqueue * q, Queue(static_cast<uint32_t>(i)));
  UniqueFd fd;
  if (!(v & kVringNoFd)) {
    if (m.fds.size() != 1)
      return absl::InvalidArgumentError(StrCat(RequestName(m.request), " without an fd"));
    fd = std::move(m.fds[0]);
    m.fds.clear();
  }
  switch (m.request) {
    case kSetVringKick:
      if (!fd) return absl::UnimplementedError("polling mode (a ring without kick fd)");
      if (kick_handlers_[i]) loop_->Remove(kick_handlers_[i]);
      kick_handlers_[i] = 0;
      fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
      q->set_kick_fd(std::move(fd));
      q->set_started(true);
      WatchKick(i);
      device_->QueuesChanged();
      // Buffers the driver added before the ring started got no kick we could see.
      device_->QueueKicked(i);
      return absl::OkStatus();
    case kSetVringCall:
      q->set_call_fd(std::move(fd));
      return absl::OkStatus();
    default:  // SET_VRING_ERR: we never report ring errors
      return absl::OkStatus();
  }
}

void VhostUserSession::WatchKick(size_t i) {
  auto id = loop_->Add(queues_[i].kick_fd(), EPOLLIN, [this, i](uint32_t) {
    uint64_t count;
    while (read(queues_[i].kick_fd(), &count, sizeof count) == sizeof count) {
    }
    device_->QueueKicked(i);
  });
  if (!id.ok()) {
    log::Error("cannot watch a kick fd").Kv("queue", i).Kv("error", id.status().ToString());
    return;
  }
  kick_handlers_[i] = *id;
}

void VhostUserSession::StopQueue(size_t i) {
  if (kick_handlers_[i]) loop_->Remove(kick_handlers_[i]);
  kick_handlers_[i] = 0;
  queues_[i].set_started(false);
  queues_[i].set_kick_fd(UniqueFd());
}

Status VhostUserSession::GetConfig(VhostUserMsg& m, int sock) {
  RETURN_IF_ERROR(NeedSize(m, 12));
  const uint32_t offset = m.Get<uint32_t>(0);
  const uint32_t size = m.Get<uint32_t>(4);
  const std::vector<uint8_t> cfg = device_->Config();
  uint32_t reply_size = 12 + size;
  if (size > VhostUserMsg::kMaxPayload - 12 || offset > cfg.size() || size > cfg.size() - offset) {
    reply_size = 12;  // an empty config payload tells the front-end the request failed
  } else {
    memcpy(m.payload + 12, cfg.data() + offset, size);
  }
  Status st =
      WriteVhostUserMsg(sock, m.request, kVhostUserVersion | kFlagReply, m.payload, reply_size);
  if (!st.ok()) return absl::UnavailableError(st.message());
  return absl::OkStatus();
}

// ---- server ----

VhostUserServer::VhostUserServer(EventLoop* loop, VirtioDevice* device, std::string path,
                                 VhostUserOptions opts)
    : loop_(loop),
      device_(device),
      path_(std::move(path)),
      opts_(opts),
      msg_(std::make_unique<VhostUserMsg>()) {}

VhostUserServer::~VhostUserServer() {
  session_.reset();
  if (conn_handler_) loop_->Remove(conn_handler_);
  if (listen_handler_) loop_->Remove(listen_handler_);
}

Status VhostUserServer::Start() {
  struct sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sun.sun_path)
    return absl::InvalidArgumentError("socket path too long");
  memcpy(sun.sun_path, path_.data(), path_.size());
  listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_) return ErrnoError(errno, "socket");
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path_.c_str());
  if (bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0) {
    return ErrnoError(errno, "bind ", path_);
  }
  if (listen(listen_fd_.get(), 4) < 0) return ErrnoError(errno, "listen ", path_);
  WatchListener();
  return absl::OkStatus();
}

void VhostUserServer::WatchListener() {
  auto id = loop_->Add(listen_fd_.get(), EPOLLIN, [this](uint32_t) { OnAccept(); });
  if (id.ok()) listen_handler_ = *id;
}

void VhostUserServer::OnAccept() {
  UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return;
  // Messages are read whole once the first byte is there; a front-end stuck mid-message
  // must not hold the loop forever.
  struct timeval tv = {10, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  auto id = loop_->Add(fd.get(), EPOLLIN, [this](uint32_t) { OnReadable(); });
  if (!id.ok()) {
    log::Error("cannot watch the front-end").Kv("error", id.status().ToString());
    return;
  }
  conn_ = std::move(fd);
  conn_handler_ = *id;
  // One front-end at a time: the next waits in the backlog until this one is gone.
  loop_->Remove(listen_handler_);
  listen_handler_ = 0;
  session_ = std::make_unique<VhostUserSession>(loop_, device_, opts_);
  log::Info("vhost-user front-end connected").Kv("socket", path_);
}

void VhostUserServer::OnReadable() {
  auto more = ReadVhostUserMsg(conn_.get(), msg_.get());
  if (!more.ok()) {
    EndSession(more.status().ToString());
    return;
  }
  if (!*more) {
    EndSession("closed");
    return;
  }
  Status st = session_->Handle(*msg_, conn_.get());
  if (!st.ok()) EndSession(st.ToString());
}

void VhostUserServer::EndSession(std::string_view why) {
  log::Info("vhost-user front-end gone").Kv("reason", why);
  session_.reset();  // resets the device, unmaps the memory, closes the queue fds
  if (conn_handler_) loop_->Remove(conn_handler_);
  conn_handler_ = 0;
  conn_.reset();
  WatchListener();
}

}  // namespace kata::vsock
