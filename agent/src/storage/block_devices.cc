#include "storage/block_devices.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>

#include "storage/device_wait.h"
#include "storage/pci_path.h"
#include "storage/uevent.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

constexpr char kScsiHostDir[] = "/sys/class/scsi_host";

bool ParseUnsigned(std::string_view s, unsigned* out) {
  if (s.empty() || s.size() > 9) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  *out = v;
  return true;
}

StatusOr<std::string> DevNodeOf(const Uevent& ev) {
  if (ev.devname.empty()) return absl::InternalError(StrCat(ev.devpath, " has no device node"));
  std::string path = ev.devname[0] == '/' ? ev.devname : StrCat("/dev/", ev.devname);
  RETURN_IF_ERROR(BlockDeviceNumber(path).status());
  return path;
}

// Asks every SCSI host to scan channel 0, target id, lun (a LUN added after the host's
// first scan appears only then).
void ScanScsiHosts(unsigned id, unsigned lun) {
  DIR* d = opendir(kScsiHostDir);
  if (!d) return;
  const std::string req = StrCat("0 ", id, " ", lun);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    Status st = WriteFileString(StrCat(kScsiHostDir, "/", e->d_name, "/scan"), req);
    if (!st.ok()) log::Debug("SCSI scan").Kv("host", e->d_name).Kv("error", st.ToString());
  }
  closedir(d);
}

StatusOr<std::string> FindVirtioBlkPci(CallContext& ctx, std::string_view source,
                                       std::chrono::milliseconds timeout) {
  if (source.substr(0, 5) == "/dev/") {
    std::string path(source);
    RETURN_IF_ERROR(BlockDeviceNumber(path).status());
    return path;
  }
  ASSIGN_OR_RETURN(PciPath p, ParsePciPath(source));
  ASSIGN_OR_RETURN(Uevent ev, WaitForPciDevice(
                                  ctx, p, "block",
                                  [](const Uevent& e, std::string_view rest) {
                                    return !e.devname.empty() && IsVirtioBlockRest(rest);
                                  },
                                  timeout, "virtio-blk disk"));
  return DevNodeOf(ev);
}

StatusOr<std::string> FindVirtioBlkMmio(CallContext& ctx, std::string_view source,
                                        std::chrono::milliseconds timeout) {
  if (source.substr(0, 5) != "/dev/" || source.size() == 5 ||
      source.find('/', 5) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat("mmioblk source '", source, "': expected a device node like /dev/vdb"));
  }
  std::string path(source);
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    RETURN_IF_ERROR(BlockDeviceNumber(path).status());
    return path;
  }
  const std::string name(source.substr(5));
  const std::string suffix = "/block/" + name;
  auto match = [&](const Uevent& e) {
    return e.subsystem == "block" && e.devname == name && e.devpath.size() > suffix.size() &&
           e.devpath.compare(e.devpath.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  ASSIGN_OR_RETURN(Uevent ev, WaitWithPciRescan(ctx, match, timeout, StrCat("mmio disk ", path)));
  return DevNodeOf(ev);
}

StatusOr<std::string> FindScsiDisk(CallContext& ctx, std::string_view source,
                                   std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(auto addr, ParseScsiAddress(source));
  ScanScsiHosts(addr.first, addr.second);
  auto match = [&](const Uevent& e) {
    return e.subsystem == "block" && !e.devname.empty() &&
           MatchScsiDiskDevpath(e.devpath, addr.first, addr.second);
  };
  ASSIGN_OR_RETURN(Uevent ev, WaitWithPciRescan(ctx, match, timeout, StrCat("SCSI disk ", source)));
  return DevNodeOf(ev);
}

}  // namespace

StatusOr<std::pair<unsigned, unsigned>> ParseScsiAddress(std::string_view addr) {
  size_t colon = addr.find(':');
  unsigned id = 0, lun = 0;
  if (colon == std::string_view::npos || !ParseUnsigned(addr.substr(0, colon), &id) ||
      !ParseUnsigned(addr.substr(colon + 1), &lun)) {
    return absl::InvalidArgumentError(
        StrCat("SCSI address '", addr, "': expected SCSI-ID:LUN, e.g. 0:0"));
  }
  return std::make_pair(id, lun);
}

bool MatchScsiDiskDevpath(std::string_view devpath, unsigned id, unsigned lun) {
  size_t b = devpath.rfind("/block/");
  if (b == std::string_view::npos) return false;
  std::string_view name = devpath.substr(b + 7);
  if (name.empty() || name.find('/') != std::string_view::npos) return false;
  std::string_view before = devpath.substr(0, b);
  std::string_view comp = before.substr(before.rfind('/') + 1);  // "H:C:T:L"
  unsigned v[4];
  for (int i = 0; i < 4; i++) {
    size_t c = comp.find(':');
    if ((i < 3) == (c == std::string_view::npos)) return false;
    if (!ParseUnsigned(comp.substr(0, c), &v[i])) return false;
    comp = c == std::string_view::npos ? std::string_view() : comp.substr(c + 1);
  }
  return v[1] == 0 && v[2] == id && v[3] == lun;
}

int64_t DevMajor(dev_t d) { return major(d); }
int64_t DevMinor(dev_t d) { return minor(d); }

StatusOr<dev_t> BlockDeviceNumber(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0)
    return ErrnoErrorCode(
        errno == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kInternal, errno, "stat ",
        path);
  if (!S_ISBLK(st.st_mode))
    return absl::InvalidArgumentError(StrCat(path, " is not a block device"));
  return st.st_rdev;
}

StatusOr<std::string> FindBlockDevice(CallContext& ctx, std::string_view driver,
                                      std::string_view source, std::chrono::milliseconds timeout) {
  if (driver == "blk" || driver == "virtio-blk") return FindVirtioBlkPci(ctx, source, timeout);
  if (driver == "mmioblk") return FindVirtioBlkMmio(ctx, source, timeout);
  if (driver == "scsi") return FindScsiDisk(ctx, source, timeout);
  return absl::InvalidArgumentError(StrCat("'", driver, "' is not a block device driver"));
}

}  // namespace kata
