#include "storage/volume.h"

#include <fcntl.h>
#include <linux/ioctl.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "storage/mountinfo.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

// fs/ext4/ext4.h (not in the uapi headers): grow a mounted ext4 to a block count.
constexpr unsigned long kExt4IocResizeFs = _IOW('f', 16, uint64_t);
constexpr std::chrono::milliseconds kPoll{50};

StatusOr<uint64_t> DeviceBytes(const std::string& sysdev) {
  ASSIGN_OR_RETURN(std::string s, ReadFileString(sysdev + "/size", 64));
  return strtoull(s.c_str(), nullptr, 10) * 512;  // sectors of 512 bytes, whatever the device
}

}  // namespace

StatusOr<VolumeStats> GetVolumeStats(const std::string& path) {
  if (path.empty() || path[0] != '/')
    return absl::InvalidArgumentError(StrCat("volume path '", path, "' is not absolute"));
  struct statfs sf;
  if (statfs(path.c_str(), &sf) < 0) {
    return ErrnoErrorCode(
        errno == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kInternal, errno,
        "statfs ", path);
  }
  VolumeStats v;
  const uint64_t bs = static_cast<uint64_t>(sf.f_bsize);
  v.bytes.total = sf.f_blocks * bs;
  v.bytes.available = sf.f_bfree * bs;
  v.bytes.used = v.bytes.total - v.bytes.available;
  v.inodes.total = sf.f_files;
  v.inodes.available = sf.f_ffree;
  v.inodes.used = v.inodes.total - v.inodes.available;
  return v;
}

Status ResizeVolume(CallContext& ctx, const std::string& path, uint64_t size,
                    std::chrono::milliseconds wait) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("resize volume ", path, ": ", why));
  };
  if (path.empty() || path[0] != '/') return bad("not an absolute path");
  ASSIGN_OR_RETURN(std::vector<MountEntry> all, ReadMountInfo());
  const MountEntry* m = FindMount(all, path);
  if (!m) return bad("not a mount point");
  if (m->fstype != "ext4")
    return bad(StrCat("filesystem ", m->fstype, " (only ext4 grows online here)"));
  const std::string sysdev = StrCat("/sys/dev/block/", m->major, ":", m->minor);
  if (access(sysdev.c_str(), F_OK) != 0)
    return bad(StrCat("not on a block device (", m->source, ")"));

  // The host grew the disk; the guest learns it from a config interrupt (virtio-blk) or a
  // rescan (SCSI, done here).
  (void)WriteFileString(sysdev + "/device/rescan", "1");
  ASSIGN_OR_RETURN(uint64_t dev_bytes, DeviceBytes(sysdev));
  const auto until = std::chrono::steady_clock::now() + wait;
  while (size > dev_bytes && std::chrono::steady_clock::now() < until) {
    RETURN_IF_ERROR(ctx.Alive());
    std::this_thread::sleep_for(kPoll);
    ASSIGN_OR_RETURN(dev_bytes, DeviceBytes(sysdev));
  }
  if (size > dev_bytes) {
    return absl::FailedPreconditionError(StrCat("resize volume ", path, ": ", m->source, " has ",
                                                dev_bytes, " bytes, fewer than the ", size,
                                                " asked"));
  }
  const uint64_t target = size ? size : dev_bytes;

  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoError(errno, "open ", path);
  struct statfs sf;
  if (fstatfs(fd.get(), &sf) < 0) return ErrnoError(errno, "statfs ", path);
  if (sf.f_type != EXT4_SUPER_MAGIC) return bad("not an ext4 filesystem");
  const uint64_t bs = static_cast<uint64_t>(sf.f_bsize);
  uint64_t blocks = target / bs;
  if (blocks < sf.f_blocks) {
    return absl::FailedPreconditionError(
        StrCat("resize volume ", path, ": ", target, " bytes would shrink the filesystem"));
  }
  log::Info("resizing volume")
      .Kv("path", path)
      .Kv("device", m->source)
      .Kv("device_bytes", dev_bytes)
      .Kv("blocks", blocks)
      .Kv("block_size", bs);
  if (ioctl(fd.get(), kExt4IocResizeFs, &blocks) < 0) {
    int err = errno;
    return ErrnoErrorCode(
        err == EINVAL ? absl::StatusCode::kFailedPrecondition : absl::StatusCode::kInternal, err,
        "EXT4_IOC_RESIZE_FS ", path, " to ", blocks, " blocks");
  }
  return absl::OkStatus();
}

void TouchShareMounts(const std::string& share_dir) {
  StatusOr<std::vector<MountEntry>> all = ReadMountInfo();
  if (!all.ok()) return;
  for (const auto& m : *all) {
    if (m.mount_point.rfind(share_dir, 0) != 0) continue;
    struct stat st;
    int rc = stat(m.mount_point.c_str(), &st);
    log::Debug("share mount checked")
        .Kv("mount_point", m.mount_point)
        .Kv("result", rc == 0 ? std::string("ok") : ErrnoText(errno));
  }
}

}  // namespace kata
