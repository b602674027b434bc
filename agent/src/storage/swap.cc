#include "storage/swap.h"

#include <sys/swap.h>

#include "storage/block_devices.h"
#include "storage/pci_path.h"
#include "util/log.h"

namespace kata {

Status AddSwapDevice(CallContext& ctx, const std::vector<uint32_t>& pci_slots,
                     std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(PciPath p, PciPathFromSlots(pci_slots));
  ASSIGN_OR_RETURN(std::string dev, FindBlockDevice(ctx, "blk", p.ToString(), timeout));
  if (swapon(dev.c_str(), 0) < 0) {
    return ErrnoErrorCode(
        errno == EINVAL ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal, errno,
        "swapon ", dev, " (PCI path ", p.ToString(), ")");
  }
  log::Info("swap added").Kv("device", dev).Kv("pci_path", p.ToString());
  return absl::OkStatus();
}

Status AddSwapFile(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos)
    return absl::InvalidArgumentError(StrCat("swap path '", path, "' is not an absolute path"));
  if (swapon(path.c_str(), 0) < 0) {
    return ErrnoErrorCode(errno == EINVAL || errno == ENOENT ? absl::StatusCode::kInvalidArgument
                                                             : absl::StatusCode::kInternal,
                          errno, "swapon ", path);
  }
  log::Info("swap added").Kv("path", path);
  return absl::OkStatus();
}

}  // namespace kata
