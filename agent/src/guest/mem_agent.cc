#include "guest/mem_agent.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "guest/metrics.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

constexpr uint32_t kMaxOrder = 10;  // x86_64's largest buddy order (MAX_ORDER - 1 in 6.1)
constexpr char kLruGen[] = "/sys/kernel/mm/lru_gen/enabled";

bool ToU64(std::string_view s, uint64_t* v) {
  if (s.empty()) return false;
  std::string t(s);
  char* end = nullptr;
  *v = strtoull(t.c_str(), &end, 10);
  return *end == '\0';
}

StatusOr<uint64_t> ReadPsiUs() {
  ASSIGN_OR_RETURN(std::string s, ReadFileString("/proc/pressure/memory", 4096));
  return PsiSomeTotalUs(s);
}

}  // namespace

Status MergeCompactUpdate(const CompactUpdate& u, CompactConfig* cfg) {
  if (u.period_secs && *u.period_secs == 0) {
    return absl::InvalidArgumentError("period_secs 0: the period must be at least 1 s");
  }
  for (auto [name, v] : {std::pair{"period_psi_percent_limit", u.period_psi_percent_limit},
                         std::pair{"compact_psi_percent_limit", u.compact_psi_percent_limit}}) {
    if (v && *v > 100) {
      return absl::InvalidArgumentError(StrCat(name, " ", *v, " is not a percentage"));
    }
  }
  if (u.compact_order && *u.compact_order > kMaxOrder) {
    return absl::InvalidArgumentError(
        StrCat("compact_order ", *u.compact_order, " is above the largest order ", kMaxOrder));
  }
  if (u.disabled) cfg->disabled = *u.disabled;
  if (u.period_secs) cfg->period_secs = *u.period_secs;
  if (u.period_psi_percent_limit) cfg->period_psi_percent_limit = *u.period_psi_percent_limit;
  if (u.compact_psi_percent_limit) cfg->compact_psi_percent_limit = *u.compact_psi_percent_limit;
  if (u.compact_sec_max) cfg->compact_sec_max = *u.compact_sec_max;
  if (u.compact_order) cfg->compact_order = *u.compact_order;
  if (u.compact_threshold) cfg->compact_threshold = *u.compact_threshold;
  if (u.compact_force_times) cfg->compact_force_times = *u.compact_force_times;
  return absl::OkStatus();
}

StatusOr<uint64_t> FragmentedFreePages(std::string_view buddyinfo, uint32_t order) {
  uint64_t pages = 0;
  bool any = false;
  while (!buddyinfo.empty()) {
    size_t nl = buddyinfo.find('\n');
    std::string_view line = buddyinfo.substr(0, nl);
    buddyinfo.remove_prefix(nl == std::string_view::npos ? buddyinfo.size() : nl + 1);
    // "Node 0, zone   Normal   12   3   0 ..."
    std::vector<std::string_view> w = SplitFields(line, " \t,");
    if (w.empty()) continue;
    if (w.size() < 5 || w[0] != "Node" || w[2] != "zone") {
      return absl::InvalidArgumentError(StrCat("buddyinfo: unexpected line '", line, "'"));
    }
    for (size_t k = 0; k < order && 4 + k < w.size(); k++) {
      uint64_t n = 0;
      if (!ToU64(w[4 + k], &n)) {
        return absl::InvalidArgumentError(StrCat("buddyinfo: '", w[4 + k], "' is not a count"));
      }
      pages += n << k;
    }
    any = true;
  }
  if (!any) return absl::InvalidArgumentError("buddyinfo: no zones");
  return pages;
}

StatusOr<uint64_t> PsiSomeTotalUs(std::string_view pressure) {
  std::vector<std::string_view> w = SplitFields(pressure.substr(0, pressure.find('\n')), " \t");
  if (!w.empty() && w[0] == "some") {
    for (std::string_view f : w) {
      uint64_t v = 0;
      if (f.substr(0, 6) == "total=" && ToU64(f.substr(6), &v)) return v;
    }
  }
  return absl::InvalidArgumentError("pressure: no 'some ... total=' line");
}

const char* CompactActionName(CompactAction a) {
  switch (a) {
    case CompactAction::kCompact:
      return "compacted";
    case CompactAction::kForced:
      return "forced";
    case CompactAction::kSkipPressure:
      return "skipped_pressure";
    case CompactAction::kSkipFragmentation:
      return "skipped_fragmentation";
    case CompactAction::kSkipBackoff:
      return "skipped_backoff";
  }
  return "?";
}

CompactAction DecideCompact(const CompactConfig& cfg, double psi_percent, uint64_t fragmented_pages,
                            uint64_t periods_without, bool backoff) {
  if (backoff) return CompactAction::kSkipBackoff;
  if (cfg.compact_force_times != UINT64_MAX && periods_without >= cfg.compact_force_times) {
    return CompactAction::kForced;
  }
  if (psi_percent > cfg.period_psi_percent_limit) return CompactAction::kSkipPressure;
  if (fragmented_pages < cfg.compact_threshold) return CompactAction::kSkipFragmentation;
  return CompactAction::kCompact;
}

MemAgent::~MemAgent() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status MemAgent::SetCompact(const CompactUpdate& u) {
  {
    std::lock_guard<std::mutex> g(mu_);
    CompactConfig next = cfg_;
    RETURN_IF_ERROR(MergeCompactUpdate(u, &next));
    if (!next.disabled && access("/proc/sys/vm/compact_memory", W_OK) != 0) {
      return absl::FailedPreconditionError(
          "compaction: /proc/sys/vm/compact_memory is missing (no CONFIG_COMPACTION)");
    }
    cfg_ = next;
    generation_++;
    log::Info("mem agent: compaction configured")
        .Kv("disabled", cfg_.disabled)
        .Kv("period_secs", cfg_.period_secs)
        .Kv("period_psi_percent_limit", cfg_.period_psi_percent_limit)
        .Kv("compact_psi_percent_limit", cfg_.compact_psi_percent_limit)
        .Kv("compact_sec_max", cfg_.compact_sec_max)
        .Kv("compact_order", cfg_.compact_order)
        .Kv("compact_threshold", cfg_.compact_threshold)
        .Kv("compact_force_times", cfg_.compact_force_times);
    if (!cfg_.disabled && !thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  cv_.notify_all();
  return absl::OkStatus();
}

Status MemAgent::SetMemcg(std::optional<bool> disabled, bool other_fields_given) {
  if (disabled.value_or(false)) {
    std::lock_guard<std::mutex> g(mu_);
    memcg_disabled_ = true;
    log::Info("mem agent: memcg reclaim disabled");
    return absl::OkStatus();
  }
  if (access(kLruGen, F_OK) != 0) {
    return absl::FailedPreconditionError(
        StrCat("memcg reclaim ages and evicts through the multi-generational LRU, and this guest "
               "kernel has none (",
               kLruGen, " is missing: CONFIG_LRU_GEN)",
               other_fields_given ? "; nothing was changed" : ""));
  }
  return absl::FailedPreconditionError(
      "memcg reclaim through the multi-generational LRU is not available in this agent");
}

void MemAgent::Run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    if (cfg_.disabled) {
      cv_.wait(lk, [this] { return stop_ || !cfg_.disabled; });
      continue;
    }
    uint64_t gen = generation_;
    if (!last_psi_us_) {
      StatusOr<uint64_t> psi = ReadPsiUs();
      if (psi.ok()) last_psi_us_ = *psi;
    }
    auto period = std::chrono::seconds(cfg_.period_secs);
    if (cv_.wait_for(lk, period, [&] { return stop_ || generation_ != gen; })) {
      last_psi_us_.reset();  // a new configuration starts a new period
      continue;
    }
    lk.unlock();
    RunPeriod();
    lk.lock();
  }
}

void MemAgent::RunPeriod() {
  CompactConfig cfg;
  bool backoff;
  uint64_t periods;
  std::optional<uint64_t> psi_before;
  {
    std::lock_guard<std::mutex> g(mu_);
    cfg = cfg_;
    backoff = std::exchange(backoff_, false);
    periods = ++periods_without_;
    psi_before = last_psi_us_;
  }
  StatusOr<uint64_t> psi_now = ReadPsiUs();
  double psi_percent = 0;
  if (psi_now.ok() && psi_before && *psi_now >= *psi_before) {
    psi_percent = 100.0 * static_cast<double>(*psi_now - *psi_before) /
                  (static_cast<double>(cfg.period_secs) * 1e6);
  }
  uint64_t fragmented = 0;
  StatusOr<std::string> buddy = ReadFileString("/proc/buddyinfo", 64 << 10);
  if (buddy.ok()) {
    StatusOr<uint64_t> f = FragmentedFreePages(*buddy, cfg.compact_order);
    if (f.ok()) fragmented = *f;
  }
  CompactAction a = DecideCompact(cfg, psi_percent, fragmented, periods, backoff);
  bool next_backoff = false;
  if (a == CompactAction::kCompact || a == CompactAction::kForced) {
    auto t0 = std::chrono::steady_clock::now();
    StatusOr<uint64_t> p0 = ReadPsiUs();
    // One synchronous pass over every zone; it cannot be cut short, so compact_sec_max
    // and compact_psi_percent_limit act on the following period.
    Status st = WriteFileString("/proc/sys/vm/compact_memory", "1");
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    StatusOr<uint64_t> p1 = ReadPsiUs();
    double run_psi = 0;
    if (p0.ok() && p1.ok() && *p1 >= *p0 && secs > 0) {
      run_psi = 100.0 * static_cast<double>(*p1 - *p0) / (secs * 1e6);
    }
    next_backoff = run_psi > cfg.compact_psi_percent_limit ||
                   (cfg.compact_sec_max >= 0 && secs > static_cast<double>(cfg.compact_sec_max));
    log::Info("mem agent: compaction")
        .Kv("action", CompactActionName(a))
        .Kv("fragmented_pages", fragmented)
        .Kv("seconds", secs)
        .Kv("psi_percent", run_psi)
        .Kv("error", st.ok() ? "" : st.ToString());
  } else {
    log::Debug("mem agent: no compaction")
        .Kv("action", CompactActionName(a))
        .Kv("fragmented_pages", fragmented)
        .Kv("psi_percent", psi_percent);
  }
  std::lock_guard<std::mutex> g(mu_);
  counts_[static_cast<int>(a)]++;
  if (a == CompactAction::kCompact || a == CompactAction::kForced) periods_without_ = 0;
  backoff_ = backoff_ || next_backoff;
  last_psi_us_ = psi_now.ok() ? std::optional<uint64_t>(*psi_now) : std::nullopt;
}

std::string MemAgent::Metrics() {
  std::lock_guard<std::mutex> g(mu_);
  MetricsWriter w;
  w.Family("kata_guest_mem_agent_compact_enabled", "gauge",
           "1 while the memory agent's compaction runs.");
  w.Sample(static_cast<uint64_t>(cfg_.disabled ? 0 : 1));
  w.Family("kata_guest_mem_agent_compact_periods_total", "counter",
           "Compaction periods of the memory agent, by what was done.");
  for (int i = 0; i < 5; i++) {
    w.Sample(counts_[i], {{"action", CompactActionName(static_cast<CompactAction>(i))}});
  }
  return w.Take();
}

}  // namespace kata
