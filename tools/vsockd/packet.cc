#include "packet.h"

#include "util/strcat.h"

namespace kata::vsock {
namespace {

// Explicit little-endian field access: the header is packed and has no alignment guarantee.
template <typename T>
T Load(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

template <typename T>
void Store(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Offsets of the fields in struct virtio_vsock_hdr.
enum : size_t {
  kSrcCid = 0,
  kDstCid = 8,
  kSrcPort = 16,
  kDstPort = 20,
  kLen = 24,
  kType = 28,
  kOp = 30,
  kFlags = 32,
  kBufAlloc = 36,
  kFwdCnt = 40,
};
static_assert(kFwdCnt + 4 == kHeaderSize);

}  // namespace

Header DecodeHeader(const uint8_t* in) {
  Header h;
  h.src_cid = Load<uint64_t>(in + kSrcCid);
  h.dst_cid = Load<uint64_t>(in + kDstCid);
  h.src_port = Load<uint32_t>(in + kSrcPort);
  h.dst_port = Load<uint32_t>(in + kDstPort);
  h.len = Load<uint32_t>(in + kLen);
  h.type = Load<uint16_t>(in + kType);
  h.op = Load<uint16_t>(in + kOp);
  h.flags = Load<uint32_t>(in + kFlags);
  h.buf_alloc = Load<uint32_t>(in + kBufAlloc);
  h.fwd_cnt = Load<uint32_t>(in + kFwdCnt);
  return h;
}

void EncodeHeader(const Header& h, uint8_t* out) {
  Store<uint64_t>(out + kSrcCid, h.src_cid);
  Store<uint64_t>(out + kDstCid, h.dst_cid);
  Store<uint32_t>(out + kSrcPort, h.src_port);
  Store<uint32_t>(out + kDstPort, h.dst_port);
  Store<uint32_t>(out + kLen, h.len);
  Store<uint16_t>(out + kType, h.type);
  Store<uint16_t>(out + kOp, h.op);
  Store<uint32_t>(out + kFlags, h.flags);
  Store<uint32_t>(out + kBufAlloc, h.buf_alloc);
  Store<uint32_t>(out + kFwdCnt, h.fwd_cnt);
}

const char* OpName(uint16_t op) {
  switch (op) {
    case kOpInvalid:
      return "INVALID";
    case kOpRequest:
      return "REQUEST";
    case kOpResponse:
      return "RESPONSE";
    case kOpRst:
      return "RST";
    case kOpShutdown:
      return "SHUTDOWN";
    case kOpRw:
      return "RW";
    case kOpCreditUpdate:
      return "CREDIT_UPDATE";
    case kOpCreditRequest:
      return "CREDIT_REQUEST";
  }
  return "UNKNOWN";
}

std::string Describe(const Header& h) {
  return StrCat(OpName(h.op), " ", h.src_cid, ":", h.src_port, " -> ", h.dst_cid, ":", h.dst_port,
                " len=", h.len, " type=", h.type, " flags=", h.flags, " buf_alloc=", h.buf_alloc,
                " fwd_cnt=", h.fwd_cnt);
}

}  // namespace kata::vsock
