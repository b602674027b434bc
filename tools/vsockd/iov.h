// Scatter-gather helpers over std::vector<iovec>: a descriptor chain's buffers in host memory,
// where a packet header and its payload may be split at any byte.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kata::vsock {

size_t IovLength(const std::vector<iovec>& iov);

// Copies up to n bytes starting at byte `offset` of iov into dst; returns the count copied.
size_t IovCopyOut(const std::vector<iovec>& iov, size_t offset, void* dst, size_t n);
// Copies up to n bytes from src into iov starting at byte `offset`; returns the count copied.
size_t IovCopyIn(const std::vector<iovec>& iov, size_t offset, const void* src, size_t n);

// Appends to out the iovecs covering bytes [offset, offset + max_len) of iov (fewer bytes when
// iov is shorter). Returns the byte count covered.
size_t IovSlice(const std::vector<iovec>& iov, size_t offset, size_t max_len,
                std::vector<iovec>* out);

}  // namespace kata::vsock
