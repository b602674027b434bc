// Shared filesystems from the host: virtio-fs and 9p, mounted by tag.
#include "storage/drivers.h"

namespace kata {
namespace {

constexpr char kDefaultTag[] = "kataShared";

}  // namespace

StatusOr<MountedStorage> MountVirtioFs(DriverContext&, const StorageSpec& in) {
  StorageSpec s = in;
  if (s.source.empty()) s.source = kDefaultTag;
  if (s.fstype.empty()) s.fstype = "virtiofs";
  if (s.fstype != "virtiofs") {
    return absl::InvalidArgumentError(
        StrCat("storage ", s.mount_point, ": virtio-fs with fstype '", s.fstype, "'"));
  }
  return MountStorage(s);
}

StatusOr<MountedStorage> Mount9p(DriverContext&, const StorageSpec& in) {
  StorageSpec s = in;
  if (s.source.empty()) s.source = kDefaultTag;
  if (s.fstype.empty()) s.fstype = "9p";
  if (s.fstype != "9p") {
    return absl::InvalidArgumentError(
        StrCat("storage ", s.mount_point, ": 9p with fstype '", s.fstype, "'"));
  }
  // Without trans=virtio the kernel's 9p would look for a network server named by source.
  if (!OptionValue(s.options, "trans")) s.options.push_back("trans=virtio");
  return MountStorage(s);
}

}  // namespace kata
