// The block storage drivers: blk/virtio-blk (PCI), mmioblk (virtio-mmio), scsi.
#include <unistd.h>

#include "storage/block_devices.h"
#include "storage/drivers.h"
#include "util/log.h"
#include "util/reaper.h"

namespace kata {
namespace {

constexpr char kCreateFs[] = "create_filesystem";
// Upstream's options for a fresh block emptyDir: no journal, no reserved blocks, few inodes.
const std::vector<std::string> kMkfsExt4Opts = {"-F", "-O",     "^has_journal", "-m", "0",
                                                "-i", "163840", "-I",           "128"};

StatusOr<std::string> FindProgram(const char* name) {
  for (const char* dir : {"/sbin", "/usr/sbin", "/bin", "/usr/bin"}) {
    std::string p = StrCat(dir, "/", name);
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return absl::FailedPreconditionError(StrCat(name, " is not in the guest image"));
}

Status MakeExt4(const std::string& dev) {
  ASSIGN_OR_RETURN(std::string mkfs, FindProgram("mkfs.ext4"));
  std::vector<std::string> argv = {mkfs};
  argv.insert(argv.end(), kMkfsExt4Opts.begin(), kMkfsExt4Opts.end());
  argv.push_back(dev);
  ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv));
  if (r.wait_status != 0) {
    return absl::InternalError(
        StrCat("mkfs.ext4 ", dev, ": ", DescribeWaitStatus(r.wait_status), ": ", r.output));
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<MountedStorage> MountBlockStorage(DriverContext& dc, const StorageSpec& in) {
  bool create_fs = false;
  for (const std::string& o : in.driver_options) {
    if (o == kCreateFs) {
      create_fs = true;
    } else if (o.rfind("encryption_key=", 0) == 0) {
      return absl::InvalidArgumentError(
          StrCat("storage ", in.mount_point, ": unsupported: driver option ", o,
                 " (encrypted block volumes need the confidential data hub)"));
    }
  }
  ASSIGN_OR_RETURN(std::string dev,
                   FindBlockDevice(*dc.ctx, in.driver, in.source, dc.hotplug_timeout));
  StorageSpec s = in;
  s.source = dev;
  log::Info("block storage found")
      .Kv("driver", s.driver)
      .Kv("address", in.source)
      .Kv("device", dev);
  if (create_fs) {
    if (s.fstype != "ext4") {
      return absl::InvalidArgumentError(StrCat("storage ", s.mount_point, ": ", kCreateFs,
                                               " supports ext4 only, not '", s.fstype, "'"));
    }
    RETURN_IF_ERROR(MakeExt4(dev));
  }
  return MountStorage(s);
}

}  // namespace kata
