// A container's cgroup as its spec asks for it, and the cgroup v2 file values that say
// it. Everything here is pure: no system calls, so every conversion is unit-tested.
//
//   ASSIGN_OR_RETURN(std::string rel, CgroupRelativePath(spec.linux().cgroupspath(), id));
//   ASSIGN_OR_RETURN(CgroupResources r, ParseResources(spec.linux().resources(),
//   "linux.resources")); ASSIGN_OR_RETURN(std::vector<CgroupWrite> w, CgroupWrites(r));
//   // {"memory.max", "33554432"}, {"cpu.weight", "39"}, {"cpu.max", "50000 100000"}, ...
//
// The API's messages are proto3 without presence, and upstream reads them so: a zero
// means "not given" (left as it is), -1 means "no limit" ("max"). The device rules of
// resources.devices are kept here and compiled by runtime/device_filter.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci.pb.h"
#include "runtime/device_filter.h"
#include "util/status.h"

namespace kata {

// Where the container's cgroup goes, relative to the containers' parent cgroup:
//   ""                                      -> "<container id>"
//   "/kubepods/pod1/c1" or "kubepods/pod1"  -> "kubepods/pod1/c1", "kubepods/pod1"
//   "kubepods-pod1.slice:cri:c1"            -> "kubepods.slice/kubepods-pod1.slice/cri-c1.scope"
// The systemd form "slice:prefix:name" is expanded as systemd (and runc, and the Kata
// agent's systemd driver) do: each '-' of the slice names a parent slice, the unit is
// "<prefix>-<name>.scope" (or <name> when it is itself a slice); an empty slice is
// system.slice, an empty name the container id. INVALID_ARGUMENT for "..", ".", or a path
// naming the parent itself.
StatusOr<std::string> CgroupRelativePath(std::string_view cgroups_path,
                                         std::string_view container_id);

struct ThrottleDevice {
  int64_t major = 0, minor = 0;
  uint64_t rate = 0;  // 0: no limit
};

struct WeightDevice {
  int64_t major = 0, minor = 0;
  uint32_t weight = 0;  // OCI blkio weight, 10..1000
};

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB", ...
  uint64_t limit = 0;     // bytes
};

struct CgroupResources {
  // memory: bytes; -1 is "no limit". swap is OCI's memory+swap total.
  std::optional<int64_t> memory_limit, memory_reservation, memory_swap;
  // Not expressible on cgroup v2: accepted, logged by the caller, not applied.
  std::optional<uint64_t> swappiness;
  bool disable_oom_killer = false;
  std::optional<int64_t> kernel_memory, kernel_tcp_memory;
  // cpu
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> cpu_quota;  // microseconds; -1 is "no limit"
  std::optional<uint64_t> cpu_period;
  std::string cpus, mems;  // cpuset lists ("0-2,4"); empty: not given
  // pids; -1 is "no limit"
  std::optional<int64_t> pids_limit;
  // io
  std::optional<uint32_t> blkio_weight;
  std::vector<WeightDevice> weight_devices;
  std::vector<ThrottleDevice> read_bps, write_bps, read_iops, write_iops;
  std::vector<HugepageLimit> hugepage_limits;
  // Files written as given, after the converted ones (OCI linux.resources.unified).
  std::map<std::string, std::string> unified;
  // resources.devices; nullopt when the spec gives none (the API cannot tell "none" from
  // "empty", so an empty list is none too).
  std::optional<std::vector<DeviceRule>> devices;
  // Given but meaningless on cgroup v2 (net_cls/net_prio, realtime cpu, leaf weights):
  // field names, for the caller to log once.
  std::vector<std::string> ignored;
};

// Validates and converts; INVALID_ARGUMENT naming the field ("<where>.CPU.Cpus: ...").
StatusOr<CgroupResources> ParseResources(const grpc::LinuxResources& r, std::string_view where);

// OCI linux.resources.unified has no field in the API's LinuxResources: it is read from
// the spec's annotations "org.opencontainers.runtime-spec.linux.resources.unified.<file>"
// (our extension; the runtime never sends them unless asked to). Each name is validated.
inline constexpr std::string_view kUnifiedAnnotationPrefix =
    "org.opencontainers.runtime-spec.linux.resources.unified.";
Status ParseUnifiedAnnotations(const google::protobuf::Map<std::string, std::string>& annotations,
                               CgroupResources* r);

// A cgroup v2 interface file name that may be written through `unified`: "<controller>.<name>"
// with a known controller, no path separators, and not one of the files that manage the
// tree itself (cgroup.procs, cgroup.subtree_control, cgroup.kill, cgroup.freeze, ...).
Status ValidateUnifiedName(std::string_view name);

// runc's conversions.
uint64_t CpuSharesToWeight(uint64_t shares);      // 1 + ((shares - 2) * 9999) / 262142
uint64_t BlkioWeightToIoWeight(uint64_t weight);  // 1 + ((weight - 10) * 9999) / 990
// memory.swap.max from OCI's memory+swap total: swap - limit; -1 -> -1 ("max"); 0 -> 0 (not
// given); a limit of -1 with no swap given means both unlimited. INVALID_ARGUMENT when swap
// is given without a memory limit, or is below it.
StatusOr<int64_t> SwapToCgroupV2(int64_t swap, int64_t limit);
// cpu.max from quota and period (either may be absent): "max 100000", "50000 100000". When
// only the period is given, the current quota (current_cpu_max's first word) is kept.
std::string CpuMaxValue(std::optional<int64_t> quota, std::optional<uint64_t> period,
                        std::string_view current_cpu_max = "");
// A cpuset list "0-3,5,7-8": INVALID_ARGUMENT otherwise.
Status ValidateCpuList(std::string_view list);

struct CgroupWrite {
  std::string file;
  std::string value;
};

// The files to write, in order: memory first, then cpu, cpuset, pids, io, hugetlb, unified
// (a unified entry replaces a converted value for the same file). current_cpu_max: the
// cgroup's cpu.max now (for an update that changes only the period).
StatusOr<std::vector<CgroupWrite>> CgroupWrites(const CgroupResources& r,
                                                std::string_view current_cpu_max = "");

// The memory.max of the parent of all containers: MemTotal less what is kept for the
// kernel, the agent and its helpers; never below min_bytes.
uint64_t ContainersMemoryMax(uint64_t mem_total_bytes, uint64_t reserve_bytes,
                             uint64_t min_bytes = 16ull << 20);
// The default reserve: MemTotal / 16, within [64 MiB, 256 MiB].
uint64_t DefaultMemoryReserve(uint64_t mem_total_bytes);
// "MemTotal:  503424 kB" of /proc/meminfo, in bytes; nullopt if absent.
std::optional<uint64_t> MemTotalFromMeminfo(std::string_view meminfo);

}  // namespace kata
