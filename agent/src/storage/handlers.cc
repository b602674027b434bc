// The storage drivers and device types this agent handles (reported by GetGuestDetails),
// and the ones it refuses on purpose.
#include <string_view>

#include "storage/drivers.h"
#include "storage/storage.h"

namespace kata {
namespace {

struct DriverEntry {
  const char* name;
  StorageDriver fn;
};

constexpr DriverEntry kDrivers[] = {
    {"blk", MountBlockStorage},     {"virtio-blk", MountBlockStorage},
    {"mmioblk", MountBlockStorage}, {"scsi", MountBlockStorage},
    {"virtio-fs", MountVirtioFs},   {"9p", Mount9p},
    {"ephemeral", MountEphemeral},  {"local", MakeLocalStorage},
    {"overlayfs", MountOverlay},
};

struct Refused {
  const char* name;
  const char* why;
};

constexpr Refused kRefused[] = {
    {"watchable-bind", "the watchable-bind driver (inotify mirroring of host files)"},
    {"nvdimm", "nvdimm/pmem storage"},
    {"blk-ccw", "virtio-blk over CCW (s390x)"},
    {"image_guest_pull", "pulling images in the guest"},
};

}  // namespace

extern const char* const kStorageHandlers[] = {"blk",       "virtio-blk", "mmioblk",   "scsi",
                                               "virtio-fs", "9p",         "ephemeral", "local",
                                               "overlayfs", nullptr};
extern const char* const kDeviceHandlers[] = {"blk", "mmioblk", "scsi", nullptr};

const StorageDriver* FindStorageDriver(std::string_view name) {
  for (const auto& d : kDrivers) {
    if (name == d.name) return &d.fn;
  }
  return nullptr;
}

Status UnsupportedStorageDriver(std::string_view name) {
  for (const auto& r : kRefused) {
    if (name == r.name) {
      return absl::InvalidArgumentError(
          StrCat("unsupported: storage driver ", name, ": ", r.why, " is not implemented"));
    }
  }
  return absl::OkStatus();
}

}  // namespace kata
