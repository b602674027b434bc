#include "storage/device_wait.h"

#include "util/fs.h"
#include "util/log.h"

namespace kata {

StatusOr<Uevent> WaitWithPciRescan(CallContext& ctx, const UeventMonitor::Matcher& match,
                                   std::chrono::milliseconds timeout, std::string_view what,
                                   const std::string& sysfs_root) {
  UeventMonitor& mon = UeventMonitor::Get();
  bool own_timeout = false;
  StatusOr<Uevent> ev = mon.WaitFor(ctx, match, timeout, what, &own_timeout);
  if (ev.ok() || !own_timeout) return ev;
  log::Warn("device did not appear: rescanning the PCI bus")
      .Kv("device", what)
      .Kv("waited_ms", static_cast<int64_t>(timeout.count()));
  if (Status st = WriteFileString(sysfs_root + "/bus/pci/rescan", "1"); !st.ok()) {
    log::Warn("PCI rescan failed").Kv("error", st.ToString());
  }
  ev = mon.WaitFor(ctx, match, timeout, what, &own_timeout);
  if (ev.ok() || !own_timeout) return ev;
  return absl::DeadlineExceededError(StrCat(what, " did not appear within ", timeout.count(),
                                            " ms, nor within ", timeout.count(),
                                            " ms after a PCI rescan"));
}

StatusOr<Uevent> WaitForPciDevice(CallContext& ctx, const PciPath& path, std::string subsystem,
                                  PciDeviceMatcher match, std::chrono::milliseconds timeout,
                                  std::string_view what, const std::string& sysfs_root) {
  auto m = [&](const Uevent& ev) {
    if (!subsystem.empty() && ev.subsystem != subsystem) return false;
    std::string rest;
    return MatchPciDevpath(ev.devpath, path, &rest) && match(ev, rest);
  };
  return WaitWithPciRescan(ctx, m, timeout, StrCat(what, " at PCI path ", path.ToString()),
                           sysfs_root);
}

}  // namespace kata
