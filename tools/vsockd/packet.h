// virtio-vsock packets (virtio 1.2, 5.10 "Socket Device"): the 44-byte little-endian header
// that starts every packet on the rx and tx queues, and the operation and flag values.
//
//   Header h = DecodeHeader(bytes);          // bytes: 44 bytes, wherever they came from
//   uint8_t out[kHeaderSize]; EncodeHeader(h, out);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kata::vsock {

inline constexpr size_t kHeaderSize = 44;
inline constexpr uint64_t kHostCid = 2;

inline constexpr uint16_t kTypeStream = 1;

enum Op : uint16_t {
  kOpInvalid = 0,
  kOpRequest = 1,
  kOpResponse = 2,
  kOpRst = 3,
  kOpShutdown = 4,
  kOpRw = 5,
  kOpCreditUpdate = 6,
  kOpCreditRequest = 7,
};

// SHUTDOWN flags: what the sender of the packet will no longer do.
inline constexpr uint32_t kShutdownRcv = 1;
inline constexpr uint32_t kShutdownSend = 2;
inline constexpr uint32_t kShutdownBoth = kShutdownRcv | kShutdownSend;

struct Header {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = kTypeStream;
  uint16_t op = kOpInvalid;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;

  bool operator==(const Header&) const = default;
};

Header DecodeHeader(const uint8_t* in);
void EncodeHeader(const Header& h, uint8_t* out);

const char* OpName(uint16_t op);
// "RW 3:1025 -> 2:1073741824 len=4096 buf_alloc=262144 fwd_cnt=0" (for debug logs).
std::string Describe(const Header& h);

}  // namespace kata::vsock
