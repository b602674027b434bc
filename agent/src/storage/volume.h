// Volumes the runtime asks about after they were mounted: GetVolumeStats and ResizeVolume.
//
//   ASSIGN_OR_RETURN(VolumeStats s, GetVolumeStats("/run/kata-containers/.../vol"));
//   RETURN_IF_ERROR(ResizeVolume(ctx, "/run/kata-containers/.../vol", 0, timeout));
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

struct VolumeUsage {
  uint64_t total = 0, available = 0, used = 0;
};

struct VolumeStats {
  VolumeUsage bytes;   // statfs: blocks * block size; available counts free blocks (f_bfree)
  VolumeUsage inodes;  // statfs: files, free files
};

// NOT_FOUND when path does not exist.
StatusOr<VolumeStats> GetVolumeStats(const std::string& path);

// Grows the ext4 filesystem mounted at path (EXT4_IOC_RESIZE_FS, online) to `size` bytes,
// or to the whole device when size is 0. A disk the host just enlarged may take a moment
// to show its new capacity in the guest: the device is re-read (SCSI: rescanned) for up to
// `wait` until it is at least `size` bytes. INVALID_ARGUMENT for a path that is not the
// mount point of an ext4 filesystem on a block device; FAILED_PRECONDITION when the
// device is smaller than size or the filesystem would shrink.
Status ResizeVolume(CallContext& ctx, const std::string& path, uint64_t size,
                    std::chrono::milliseconds wait);

// RemoveStaleVirtiofsShareMounts: stats every mount below the shared directory, so
// virtiofsd drops what it caches for mounts whose host side went away (upstream's way).
void TouchShareMounts(const std::string& share_dir);

}  // namespace kata
