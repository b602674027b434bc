#include "guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace kata::vsock {
namespace {

bool Overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

// [addr, addr + len) inside [base, base + size), without overflow.
bool Contains(uint64_t base, uint64_t size, uint64_t addr, uint64_t len) {
  return addr >= base && addr - base <= size && len <= size - (addr - base);
}

}  // namespace

StatusOr<GuestMemory::Region> GuestMemory::Map(const RegionDesc& desc, int fd) {
  if (desc.size == 0) return absl::InvalidArgumentError("memory region of size 0");
  if (desc.gpa + desc.size < desc.gpa || desc.uva + desc.size < desc.uva) {
    return absl::InvalidArgumentError("memory region wraps around the address space");
  }
  // mmap wants a page-aligned offset; map from the page boundary below and skip the rest.
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t skip = desc.mmap_offset % page;
  const size_t len = desc.size + skip;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                 static_cast<off_t>(desc.mmap_offset - skip));
  if (p == MAP_FAILED) {
    return ErrnoError(errno, "mmap guest memory region gpa=", desc.gpa, " size=", desc.size,
                      " offset=", desc.mmap_offset);
  }
  Region r;
  r.desc = desc;
  r.host = static_cast<uint8_t*>(p) + skip;
  r.mapping = std::shared_ptr<void>(p, [len](void* q) { munmap(q, len); });
  return r;
}

GuestMemory::Region GuestMemory::Borrow(const RegionDesc& desc, uint8_t* host) {
  Region r;
  r.desc = desc;
  r.host = host;
  return r;
}

Status GuestMemory::Add(Region r) {
  const RegionDesc& d = r.desc;
  for (const Region& e : regions_) {
    if (Overlaps(d.gpa, d.size, e.desc.gpa, e.desc.size) ||
        Overlaps(d.uva, d.size, e.desc.uva, e.desc.size)) {
      return absl::InvalidArgumentError(StrCat("memory region gpa=", d.gpa, " size=", d.size,
                                               " overlaps gpa=", e.desc.gpa,
                                               " size=", e.desc.size));
    }
  }
  auto pos = std::lower_bound(regions_.begin(), regions_.end(), d.gpa,
                              [](const Region& e, uint64_t gpa) { return e.desc.gpa < gpa; });
  regions_.insert(pos, std::move(r));
  return absl::OkStatus();
}

bool GuestMemory::Remove(uint64_t gpa, uint64_t uva, uint64_t size) {
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    if (it->desc.gpa == gpa && it->desc.uva == uva && it->desc.size == size) {
      regions_.erase(it);
      return true;
    }
  }
  return false;
}

const GuestMemory::Region* GuestMemory::FindGpa(uint64_t gpa) const {
  // Few regions (a handful on q35): a linear scan is as fast as anything else.
  for (const Region& r : regions_) {
    if (gpa >= r.desc.gpa && gpa - r.desc.gpa < r.desc.size) return &r;
  }
  return nullptr;
}

uint8_t* GuestMemory::GpaToHost(uint64_t gpa, uint64_t len) const {
  const Region* r = FindGpa(gpa);
  if (r == nullptr || !Contains(r->desc.gpa, r->desc.size, gpa, len)) return nullptr;
  return r->host + (gpa - r->desc.gpa);
}

uint8_t* GuestMemory::UvaToHost(uint64_t uva, uint64_t len) const {
  for (const Region& r : regions_) {
    if (Contains(r.desc.uva, r.desc.size, uva, len)) return r.host + (uva - r.desc.uva);
  }
  return nullptr;
}

bool GuestMemory::GpaToIovecs(uint64_t gpa, uint64_t len, std::vector<iovec>* out) const {
  const size_t start = out->size();
  while (len > 0) {
    const Region* r = FindGpa(gpa);
    if (r == nullptr) {
      out->resize(start);
      return false;
    }
    const uint64_t off = gpa - r->desc.gpa;
    const uint64_t n = std::min(len, r->desc.size - off);
    out->push_back({r->host + off, static_cast<size_t>(n)});
    gpa += n;
    len -= n;
  }
  return true;
}

}  // namespace kata::vsock
