// The guest's memory as the front-end shares it: regions of memfd (or other fd) memory that
// this process maps, each known by its guest-physical address (descriptor buffers) and by the
// front-end's own virtual address (ring addresses, vhost-user's "user address").
//
//   GuestMemory mem;
//   ASSIGN_OR_RETURN(auto region, GuestMemory::Map(desc, fd));
//   RETURN_IF_ERROR(mem.Add(std::move(region)));
//   std::vector<iovec> iov;
//   if (!mem.GpaToIovecs(addr, len, &iov)) ...   // not guest memory: a bad descriptor
//
// A GuestMemory is a value: copies share the mappings, and a mapping is removed when the last
// copy that holds it is gone. A new memory table is built aside and then swapped in, so no
// pointer into an old table is ever used after the swap (the backend is single-threaded and
// never keeps a host pointer across events).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "util/status.h"

namespace kata::vsock {

struct RegionDesc {
  uint64_t gpa = 0;  // guest physical address
  uint64_t size = 0;
  uint64_t uva = 0;          // the front-end's virtual address of the same bytes
  uint64_t mmap_offset = 0;  // where the region starts in the fd
};

class GuestMemory {
 public:
  struct Region {
    RegionDesc desc;
    uint8_t* host = nullptr;        // desc.gpa maps here
    std::shared_ptr<void> mapping;  // keeps the mmap alive; null for borrowed memory
  };

  // mmaps desc.size bytes of fd at desc.mmap_offset, shared and read-write.
  static StatusOr<Region> Map(const RegionDesc& desc, int fd);
  // A region over memory owned by the caller (tests and fakes).
  static Region Borrow(const RegionDesc& desc, uint8_t* host);

  // Fails when the new region overlaps an existing one (by guest or user address).
  Status Add(Region r);
  // Removes the region with this guest address, user address and size; false if none.
  bool Remove(uint64_t gpa, uint64_t uva, uint64_t size);
  void Clear() { regions_.clear(); }
  size_t num_regions() const { return regions_.size(); }
  const std::vector<Region>& regions() const { return regions_; }

  // Host pointers for a range that lies wholly inside one region; nullptr otherwise.
  uint8_t* GpaToHost(uint64_t gpa, uint64_t len) const;
  uint8_t* UvaToHost(uint64_t uva, uint64_t len) const;

  // Appends iovecs covering [gpa, gpa + len), one per region the range crosses. False (and
  // nothing appended) when any byte of the range is outside guest memory.
  bool GpaToIovecs(uint64_t gpa, uint64_t len, std::vector<iovec>* out) const;

 private:
  const Region* FindGpa(uint64_t gpa) const;

  std::vector<Region> regions_;  // sorted by guest address
};

}  // namespace kata::vsock
