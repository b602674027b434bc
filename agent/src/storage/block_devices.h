// Finding the guest's node of a block device the runtime attached, by the name the runtime
// knows it by:
//   blk (virtio-blk on PCI)  a PCI path "02/00", or a "/dev/vdX" node used as is
//   mmioblk (virtio-mmio)    the node the runtime expects, "/dev/vdX" (no bus address exists)
//   scsi (virtio-scsi)       a SCSI address "ID:LUN" ("0:0"), the host's bus scanned first
// Each returns the /dev path ("/dev/vdb") once the node exists, waiting for it as
// device_wait.h does (hotplug timeout, PCI rescan, timeout again).
//
//   ASSIGN_OR_RETURN(std::string dev, FindBlockDevice(ctx, "blk", "02/00", timeout));
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

// driver: blk/virtio-blk, mmioblk, scsi. INVALID_ARGUMENT for an unknown driver or a
// malformed address, DEADLINE_EXCEEDED naming the address when nothing appears.
StatusOr<std::string> FindBlockDevice(CallContext& ctx, std::string_view driver,
                                      std::string_view source, std::chrono::milliseconds timeout);

// "ID:LUN" -> {id, lun}. INVALID_ARGUMENT otherwise.
StatusOr<std::pair<unsigned, unsigned>> ParseScsiAddress(std::string_view addr);

// Whether devpath (a uevent DEVPATH) is the disk at SCSI target id:lun on any host, channel 0
// (".../host0/target0:0:0/0:0:0:1/block/sdb").
bool MatchScsiDiskDevpath(std::string_view devpath, unsigned id, unsigned lun);

// major(3)/minor(3), kept out of headers: <sys/sysmacros.h> defines them as macros, which
// break protobuf accessors of the same names.
int64_t DevMajor(dev_t d);
int64_t DevMinor(dev_t d);

// The device number of a block device node; INVALID_ARGUMENT if path is not one.
StatusOr<dev_t> BlockDeviceNumber(const std::string& path);

}  // namespace kata
