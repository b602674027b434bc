// StatsContainer's CgroupStats from a cgroup v2 directory's files. Pure: the files come
// through a reader, so the whole mapping is unit-tested on captured text.
//
//   FillCgroupStats([&](const std::string& f) { return ReadCgroupFile(dir, f); },
//                   {"2MB"}, resp->mutable_cgroup_stats());
//
// The mapping (runc's for cgroup v2, into the API's cgroup v1-shaped messages):
//   cpu.stat usage_usec/user_usec/system_usec -> cpu_usage (ns); no per-cpu usage on v2;
//            nr_periods/nr_throttled/throttled_usec -> throttling_data (time in ns)
//   memory.current, memory.peak, memory.events "max", memory.max -> usage
//   memory.swap.current, memory.swap.peak, memory.swap.events "max", memory.swap.max -> swap_usage
//   memory.stat "kernel" (or kernel_stack + pagetables + slab) -> kernel_usage.usage
//   memory.stat "file" -> cache; every memory.stat line -> stats; use_hierarchy: always
//   pids.current, pids.max (0 for "max", as upstream) -> pids_stats
//   io.stat rbytes/wbytes -> io_service_bytes_recursive Read/Write,
//           rios/wios -> io_serviced_recursive Read/Write
//   hugetlb.<size>.current, .events "max" -> hugetlb_stats[<size>]
// A "max" limit is reported as UINT64_MAX. Files that are missing (a controller not
// enabled) leave their part empty.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent.pb.h"

namespace kata {

using CgroupFileReader = std::function<std::optional<std::string>(const std::string& file)>;

// "key value" lines (cpu.stat, memory.stat, memory.events, ...). Lines that do not parse
// are skipped.
std::map<std::string, uint64_t> ParseFlatKeyed(std::string_view text);

struct IoStatLine {
  uint64_t major = 0, minor = 0;
  std::map<std::string, uint64_t> values;  // rbytes, wbytes, rios, wios, dbytes, dios
};
// io.stat: "254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0" per line.
std::vector<IoStatLine> ParseIoStat(std::string_view text);

// "max" -> UINT64_MAX, a number -> itself, anything else -> nullopt.
std::optional<uint64_t> ParseLimitValue(std::string_view text);

void FillCgroupStats(const CgroupFileReader& read, const std::vector<std::string>& hugepage_sizes,
                     grpc::CgroupStats* out);

}  // namespace kata
