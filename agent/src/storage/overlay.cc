// overlayfs storages: a container rootfs (or volume) layered from directories the guest
// already has (shared-fs paths, block volumes mounted before it).
#include "storage/drivers.h"
#include "util/fs.h"

namespace kata {
namespace {

constexpr char kOverlayRw[] = "io.katacontainers.fs-opt.overlay-rw";
constexpr char kCreateDir[] = "io.katacontainers.volume.overlayfs.create_directory=";

}  // namespace

StatusOr<MountedStorage> MountOverlay(DriverContext& dc, const StorageSpec& in) {
  StorageSpec s = in;
  if (s.fstype.empty() || s.fstype == "overlayfs") s.fstype = "overlay";
  if (s.fstype != "overlay") {
    return absl::InvalidArgumentError(
        StrCat("storage ", s.mount_point, ": overlayfs with fstype '", s.fstype, "'"));
  }
  if (s.source.empty()) s.source = "overlay";
  for (const std::string& o : in.options) {
    if (o != kOverlayRw) continue;
    if (dc.container_id.empty()) {
      return absl::InvalidArgumentError(
          StrCat("storage ", s.mount_point, ": ", kOverlayRw, " needs a container"));
    }
    const std::string base = StrCat(dc.bundle_dir, "/", dc.container_id);
    RETURN_IF_ERROR(MkdirAll(base + "/upper", 0755));
    RETURN_IF_ERROR(MkdirAll(base + "/work", 0755));
    s.options.push_back(StrCat("upperdir=", base, "/upper"));
    s.options.push_back(StrCat("workdir=", base, "/work"));
  }
  for (const std::string& o : in.driver_options) {
    if (o.rfind(kCreateDir, 0) == 0)
      RETURN_IF_ERROR(MkdirAll(o.substr(sizeof(kCreateDir) - 1), 0755));
  }
  if (!OptionValue(s.options, "lowerdir")) {
    return absl::InvalidArgumentError(
        StrCat("storage ", s.mount_point, ": overlay needs lowerdir="));
  }
  return MountStorage(s);
}

}  // namespace kata
