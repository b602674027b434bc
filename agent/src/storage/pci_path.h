// Kata PCI paths: where a hot-plugged device sits, as the runtime names it.
//
// A PCI path lists, from the root bus down, the slot (and optionally the function) of each
// device on the way, in hex: "02/00" is the device in slot 0 behind the bridge or PCIe root
// port in slot 2 of the root bus; "02.0/00.1" names functions too. A first element of 0x20
// or more followed by two or more elements names a PCIe expander root bus ("20/00/02": bus
// 0x20, then 00/02), as upstream reads it.
//
//   ASSIGN_OR_RETURN(PciPath p, ParsePciPath("02/00"));
//   std::string rest;
//   if (MatchPciDevpath(ev.devpath, p, &rest) && IsVirtioBlockRest(rest)) ...
//
// Matching is on the kernel's device path, where each device sits below the bridge it is
// behind ("/devices/pci0000:00/0000:00:02.0/0000:01:00.0/virtio2/block/vdb"), so no bus
// number needs to be read from sysfs and a device is matched the moment its event arrives.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata {

struct PciSlotFn {
  uint8_t slot = 0;      // 0..0x1f
  uint8_t function = 0;  // 0..7
  bool operator==(const PciSlotFn&) const = default;
};

struct PciPath {
  std::string root_bus = "00";  // the root bus number, two hex digits
  std::vector<PciSlotFn> hops;  // at least one
  bool operator==(const PciPath&) const = default;
  // "02/00" (functions shown only when not 0), with the root bus first when not 00.
  std::string ToString() const;
};

// INVALID_ARGUMENT naming the path on anything that is not a PCI path.
StatusOr<PciPath> ParsePciPath(std::string_view text);
// AddSwapRequest.PCIPath: slots only, function 0, root bus 00.
StatusOr<PciPath> PciPathFromSlots(const std::vector<uint32_t>& slots);

// Whether devpath (a uevent DEVPATH, "/devices/...") is at or below the device the path
// names. *rest gets what follows that device ("virtio2/block/vdb", "" for the device
// itself).
bool MatchPciDevpath(std::string_view devpath, const PciPath& path, std::string* rest);

// "virtioN/block/NAME": the disk of a virtio-blk PCI device (not one of its partitions).
bool IsVirtioBlockRest(std::string_view rest);
// "net/NAME" or "virtioN/net/NAME": the network interface of a PCI (or virtio PCI) NIC.
bool IsNetInterfaceRest(std::string_view rest);

}  // namespace kata
