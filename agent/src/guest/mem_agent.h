// The memory agent (MemAgentMemcgSet, MemAgentCompactSet): background memory upkeep the
// runtime switches on and tunes.
//
// Compaction is done here: every period the agent reads memory pressure (PSI, the share of
// the period some task stalled on memory) and fragmentation (/proc/buddyinfo: free pages in
// blocks smaller than 2^compact_order pages) and, when the guest is calm and fragmented
// enough, asks the kernel for a full compaction (/proc/sys/vm/compact_memory), so free
// memory forms the large blocks that free page reporting gives back to the host. A run that
// stalled tasks above compact_psi_percent_limit, or took longer than compact_sec_max,
// makes the next period skip. Every compact_force_times-th period compacts regardless.
//
// Memcg reclaim drives the kernel's multi-generational LRU (aging, eviction per cgroup); a
// kernel without MGLRU cannot do it, and the request is refused saying so.
//
//   MemAgent m;                        // no thread until compaction is enabled
//   m.SetCompact(update);              // merges the given fields, (re)starts the thread
//   std::string text = m.Metrics();    // Prometheus families for GetMetrics
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/status.h"

namespace kata {

struct CompactConfig {
  bool disabled = true;  // until the runtime enables it
  uint64_t period_secs = 600;
  uint32_t period_psi_percent_limit = 1;
  uint32_t compact_psi_percent_limit = 5;
  int64_t compact_sec_max = 300;      // < 0: no limit
  uint32_t compact_order = 9;         // blocks of 2^9 pages (2 MiB), free page reporting's order
  uint64_t compact_threshold = 1024;  // fragmented free pages needed to compact
  uint64_t compact_force_times = UINT64_MAX;
};

struct CompactUpdate {
  std::optional<bool> disabled;
  std::optional<uint64_t> period_secs;
  std::optional<uint32_t> period_psi_percent_limit;
  std::optional<uint32_t> compact_psi_percent_limit;
  std::optional<int64_t> compact_sec_max;
  std::optional<uint32_t> compact_order;
  std::optional<uint64_t> compact_threshold;
  std::optional<uint64_t> compact_force_times;
};

// Applies the given fields to cfg after validating them all (INVALID_ARGUMENT naming the
// field; cfg untouched then).
Status MergeCompactUpdate(const CompactUpdate& u, CompactConfig* cfg);

// Free pages (summed over zones) in blocks of order < order, from /proc/buddyinfo.
StatusOr<uint64_t> FragmentedFreePages(std::string_view buddyinfo, uint32_t order);
// "some ... total=N" of /proc/pressure/memory: stall microseconds.
StatusOr<uint64_t> PsiSomeTotalUs(std::string_view pressure);

enum class CompactAction { kCompact, kForced, kSkipPressure, kSkipFragmentation, kSkipBackoff };
const char* CompactActionName(CompactAction a);

// One period's decision. psi_percent: stall share of the period; periods_without: periods
// since the last compaction (1 for the period right after one).
CompactAction DecideCompact(const CompactConfig& cfg, double psi_percent, uint64_t fragmented_pages,
                            uint64_t periods_without, bool backoff);

class MemAgent {
 public:
  MemAgent() = default;
  ~MemAgent();
  MemAgent(const MemAgent&) = delete;
  MemAgent& operator=(const MemAgent&) = delete;

  Status SetCompact(const CompactUpdate& u);
  // disabled=true is stored; anything else needs MGLRU (FAILED_PRECONDITION without it).
  Status SetMemcg(std::optional<bool> disabled, bool other_fields_given);

  // kata_guest_mem_agent_* families (exposition format).
  std::string Metrics();

 private:
  void Run();
  void RunPeriod();

  std::mutex mu_;
  std::condition_variable cv_;
  CompactConfig cfg_;
  uint64_t generation_ = 0;  // bumped on each SetCompact: the thread restarts its period
  bool stop_ = false;
  std::thread thread_;
  bool memcg_disabled_ = true;
  // per CompactAction
  uint64_t counts_[5] = {};
  uint64_t periods_without_ = 0;
  bool backoff_ = false;
  std::optional<uint64_t> last_psi_us_;
};

}  // namespace kata
