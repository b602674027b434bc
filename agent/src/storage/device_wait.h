// Waiting for a hot-plugged device named by its PCI path, shared by block storage, device
// passthrough and network interfaces.
//
//   ASSIGN_OR_RETURN(PciPath p, ParsePciPath("02/00"));
//   ASSIGN_OR_RETURN(Uevent ev, WaitForPciDevice(ctx, p, "block",
//       [](const Uevent& e, std::string_view rest) { return IsVirtioBlockRest(rest); },
//       std::chrono::seconds(cfg.hotplug_timeout_s), "virtio-blk disk"));
//
// The wait lasts up to `timeout`; if nothing came, the PCI bus is rescanned once
// (/sys/bus/pci/rescan: a hot-plug notification the guest missed makes the device appear)
// and the wait is repeated. Then DEADLINE_EXCEEDED naming the PCI path.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "rpc/call_context.h"
#include "storage/pci_path.h"
#include "storage/uevent.h"
#include "util/status.h"

namespace kata {

// Called for recorded devices at or below the PCI path: `rest` is the device path below it.
using PciDeviceMatcher = std::function<bool(const Uevent& ev, std::string_view rest)>;

// subsystem: the uevent subsystem wanted ("block", "net"); empty: any.
StatusOr<Uevent> WaitForPciDevice(CallContext& ctx, const PciPath& path, std::string subsystem,
                                  PciDeviceMatcher match, std::chrono::milliseconds timeout,
                                  std::string_view what, const std::string& sysfs_root = "/sys");

// The same two-step wait (wait, PCI rescan, wait) for any matcher.
StatusOr<Uevent> WaitWithPciRescan(CallContext& ctx, const UeventMonitor::Matcher& match,
                                   std::chrono::milliseconds timeout, std::string_view what,
                                   const std::string& sysfs_root = "/sys");

}  // namespace kata
