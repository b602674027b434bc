// GetMetrics: the agent's and the guest's state in the Prometheus text exposition format
// (version 0.0.4), the format the Kata runtime's metrics endpoint passes on.
//
//   MetricsWriter w;
//   w.Family("kata_guest_load", "gauge", "Load average of the guest.");
//   w.Sample(1.5, {{"window", "1m"}});
//   std::string text = w.Take();
//
// The writer and the /proc parsers are pure (unit-tested); CollectMetrics reads /proc and
// /sys of the process it runs in.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/status.h"

namespace kata {

// The non-empty pieces of s between any of the characters in seps.
std::vector<std::string_view> SplitFields(std::string_view s, std::string_view seps);

// Metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (no "__" prefix).
bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);

class MetricsWriter {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  // Starts a family: "# HELP" and "# TYPE" lines. Every sample until the next Family()
  // belongs to it. type: counter, gauge or untyped.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // A sample of the current family. Label values are escaped (\\, \", \n); values are
  // written as integers when integral, else in the shortest form that reads back exactly.
  void Sample(double value, Labels labels = {});
  void Sample(uint64_t value, Labels labels = {});

  // The text so far (ends with a newline when not empty).
  std::string Take() { return std::move(out_); }

 private:
  void Start(Labels labels);
  std::string family_;
  std::string out_;
};

// The printed form of a sample value: integral values without a decimal point, NaN, +Inf,
// -Inf, otherwise the shortest round-trip decimal.
std::string FormatMetricValue(double v);

// One line of /proc/meminfo: "MemTotal:  1024 kB" -> {"MemTotal", 1048576, true}.
struct MeminfoEntry {
  std::string name;
  uint64_t value = 0;  // bytes when in_bytes, else the plain count (HugePages_Total, ...)
  bool in_bytes = false;
};
std::vector<MeminfoEntry> ParseMeminfo(std::string_view text);

// /proc/loadavg: "0.10 0.20 0.30 2/123 4567".
struct LoadAvg {
  double avg1 = 0, avg5 = 0, avg15 = 0;
  uint64_t runnable = 0, tasks = 0;
};
StatusOr<LoadAvg> ParseLoadavg(std::string_view text);

// /proc/<pid>/stat: user and system CPU time in clock ticks, threads. The command name may
// hold spaces and parentheses, so fields are counted from the last ')'.
struct ProcStat {
  uint64_t utime_ticks = 0, stime_ticks = 0, threads = 0;
};
StatusOr<ProcStat> ParseProcStat(std::string_view text);

// "VmRSS:    1234 kB" in /proc/<pid>/status -> bytes.
StatusOr<uint64_t> ParseStatusKb(std::string_view status, std::string_view key);

// What the agent knows besides /proc: its containers and its RPC counters.
struct AgentCounters {
  uint64_t containers = 0;
  uint64_t rpc_workers = 0;  // threads of the RPC worker pool
  // method ("grpc.AgentService/CreateContainer") -> {calls, errors}
  std::map<std::string, std::pair<uint64_t, uint64_t>> rpcs;
  // Extra families appended as given (already in exposition format), e.g. the memory agent's.
  std::string extra;
};

// The whole exposition: the agent process (RSS, fds, threads, CPU seconds), the guest
// (meminfo, loadavg, online CPUs, process count), containers and per-RPC counters.
std::string CollectMetrics(const AgentCounters& counters);

}  // namespace kata
