// CPU and memory hot-plug inside the guest (OnlineCPUMem, MemHotplugByProbe, the memory
// fields of GetGuestDetails).
//
// A hot-added CPU (QEMU device_add, an ACPI notification) appears as
// /sys/devices/system/cpu/cpuN with online=0; a hot-added DIMM appears as memory blocks
// /sys/devices/system/memory/memoryN with state=offline (the guest kernel has no
// MEMORY_HOTPLUG_DEFAULT_ONLINE): until something writes to those files, the guest gains
// nothing. Without ACPI a VMM can instead tell the kernel where new memory lies by writing
// its physical address to /sys/devices/system/memory/probe (ARCH_MEMORY_PROBE).
// Both CPUs and blocks show up some time after the VMM's device_add has returned (the guest
// handles the ACPI notification in a workqueue), so OnlineCPUMem looks for them a while.
//
// The sysfs directories are parameters so the logic runs against a fake tree in unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

inline constexpr char kSysCpuDir[] = "/sys/devices/system/cpu";
inline constexpr char kSysMemoryDir[] = "/sys/devices/system/memory";

// Onlines every offline memory block; returns how many it onlined.
StatusOr<int> OnlineMemoryBlocks(const std::string& memory_dir = kSysMemoryDir);

// Onlines the blocks of memory the VMM has just hot-added. The guest handles the VMM's ACPI
// notification asynchronously, so the blocks may not exist yet when the call comes: with
// none offline, it looks again every 20 ms until one shows up or `timeout` passes (nothing
// hot-added is not an error: it returns 0); a call that ends first (its deadline, the client
// gone) gets that status. Once it has onlined some, it looks again until a pass finds none,
// for a DIMM whose blocks were still being added. A kernel that onlines new blocks itself
// (auto_online_blocks other than "offline") is not waited for.
StatusOr<int> OnlineHotAddedMemory(CallContext& ctx, std::chrono::milliseconds timeout,
                                   const std::string& memory_dir = kSysMemoryDir);

// Onlines offline CPUs until `count` have been onlined by this call, looking again every
// 50 ms (a hot-added CPU shows up some time after the VMM added it) until `timeout` or the
// call's deadline. DEADLINE_EXCEEDED says how many were onlined.
StatusOr<int> OnlineCpus(CallContext& ctx, uint32_t count, std::chrono::milliseconds timeout,
                         const std::string& cpu_dir = kSysCpuDir);

// The memory block size (block_size_bytes, hex without 0x).
StatusOr<uint64_t> MemoryBlockSize(const std::string& memory_dir = kSysMemoryDir);
bool MemoryProbeSupported(const std::string& memory_dir = kSysMemoryDir);

// Writes each address to the probe file: each must be a multiple of the block size.
Status ProbeMemory(const std::vector<uint64_t>& addrs,
                   const std::string& memory_dir = kSysMemoryDir);

// "0-3,5" -> 5: the number of CPUs in a kernel CPU list.
uint64_t CountCpuList(std::string_view list);

}  // namespace kata
