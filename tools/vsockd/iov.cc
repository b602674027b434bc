#include "iov.h"

#include <algorithm>
#include <cstring>

namespace kata::vsock {

size_t IovLength(const std::vector<iovec>& iov) {
  size_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

size_t IovCopyOut(const std::vector<iovec>& iov, size_t offset, void* dst, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == n) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    size_t k = std::min(v.iov_len - offset, n - done);
    memcpy(d + done, static_cast<const uint8_t*>(v.iov_base) + offset, k);
    done += k;
    offset = 0;
  }
  return done;
}

size_t IovCopyIn(const std::vector<iovec>& iov, size_t offset, const void* src, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == n) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    size_t k = std::min(v.iov_len - offset, n - done);
    memcpy(static_cast<uint8_t*>(v.iov_base) + offset, s + done, k);
    done += k;
    offset = 0;
  }
  return done;
}

size_t IovSlice(const std::vector<iovec>& iov, size_t offset, size_t max_len,
                std::vector<iovec>* out) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == max_len) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    size_t k = std::min(v.iov_len - offset, max_len - done);
    if (k > 0) out->push_back({static_cast<uint8_t*>(v.iov_base) + offset, k});
    done += k;
    offset = 0;
  }
  return done;
}

}  // namespace kata::vsock
