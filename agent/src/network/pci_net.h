// A hot-plugged NIC named by its PCI path (types.Interface.devicePath).
//
// The Kata PCI path lists the slot of each device from the root bus down, in hex:
// "02/00" is the device in slot 0 behind the bridge (or PCIe root port) in slot 2 of
// bus 0000:00. The NIC is ready when its net/ directory (for virtio, its virtio device's)
// appears in sysfs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata::net {

// "02/00" -> {2, 0}. INVALID_ARGUMENT naming the path on anything else.
StatusOr<std::vector<int>> ParsePciPath(std::string_view path);

// The name of the network interface of the device at `path` under `sysfs_pci_root`
// (/sys/devices/pci0000:00), or NOT_FOUND when it is not (yet) there.
StatusOr<std::string> PciNetInterface(const std::string& sysfs_pci_root,
                                      const std::vector<int>& slots);

// Polls PciNetInterface until the interface appears or `timeout` passes
// (DEADLINE_EXCEEDED naming the path).
StatusOr<std::string> WaitForPciNetInterface(
    std::string_view path, std::chrono::milliseconds timeout,
    const std::string& sysfs_pci_root = "/sys/devices/pci0000:00");

}  // namespace kata::net
