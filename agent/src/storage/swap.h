// AddSwap / AddSwapPath: swap space the runtime attached (a virtio-blk disk with a swap
// signature, found by PCI path) or prepared as a file in the guest.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

Status AddSwapDevice(CallContext& ctx, const std::vector<uint32_t>& pci_slots,
                     std::chrono::milliseconds timeout);
Status AddSwapFile(const std::string& path);

}  // namespace kata
