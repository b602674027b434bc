#include "guest/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "guest/hotplug.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

bool NameChar(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

void AppendEscaped(std::string* out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Entries of a directory whose names are all digits (pids in /proc, fds in /proc/self/fd).
// Calls fn(name) for each all-digit entry of dir; returns how many there were.
template <typename Fn>
uint64_t ForEachNumericEntry(const char* dir, Fn fn) {
  DIR* d = opendir(dir);
  if (!d) return 0;
  uint64_t n = 0;
  while (struct dirent* e = readdir(d)) {
    const char* p = e->d_name;
    if (!*p) continue;
    while (*p >= '0' && *p <= '9') p++;
    if (!*p) {
      n++;
      fn(e->d_name);
    }
  }
  closedir(d);
  return n;
}

uint64_t CountNumericEntries(const char* dir) {
  return ForEachNumericEntry(dir, [](const char*) {});
}

// Processes of /proc in state Z (exited, not yet waited for by their parent).
uint64_t CountZombies() {
  uint64_t zombies = 0;
  ForEachNumericEntry("/proc", [&](const char* pid) {
    StatusOr<std::string> stat = ReadFileString(StrCat("/proc/", pid, "/stat"), 4096);
    if (!stat.ok()) return;  // gone meanwhile
    size_t rp = stat->rfind(')');
    if (rp != std::string::npos && rp + 2 < stat->size() && (*stat)[rp + 2] == 'Z') zombies++;
  });
  return zombies;
}

}  // namespace

std::vector<std::string_view> SplitFields(std::string_view s, std::string_view seps) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    i = s.find_first_not_of(seps, i);
    if (i == std::string_view::npos) break;
    size_t j = std::min(s.find_first_of(seps, i), s.size());
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); i++) {
    if (!NameChar(name[i], i == 0, true)) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); i++) {
    if (!NameChar(name[i], i == 0, false)) return false;
  }
  return true;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    return std::string(buf, p);
  }
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, p);
}

void MetricsWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  family_.assign(name);
  out_.append("# HELP ").append(name).push_back(' ');
  AppendEscaped(&out_, help, false);
  out_.append("\n# TYPE ").append(name).push_back(' ');
  out_.append(type).push_back('\n');
}

void MetricsWriter::Start(Labels labels) {
  out_.append(family_);
  if (labels.size() == 0) return;
  out_.push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_.push_back(',');
    first = false;
    out_.append(k).append("=\"");
    AppendEscaped(&out_, v, true);
    out_.push_back('"');
  }
  out_.push_back('}');
}

void MetricsWriter::Sample(double value, Labels labels) {
  Start(labels);
  out_.push_back(' ');
  out_.append(FormatMetricValue(value)).push_back('\n');
}

void MetricsWriter::Sample(uint64_t value, Labels labels) {
  Start(labels);
  out_.push_back(' ');
  out_.append(std::to_string(value)).push_back('\n');
}

std::vector<MeminfoEntry> ParseMeminfo(std::string_view text) {
  std::vector<MeminfoEntry> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::vector<std::string_view> f = SplitFields(line.substr(colon + 1), " \t\n");
    MeminfoEntry e;
    e.name.assign(Trim(line.substr(0, colon)));
    if (f.empty() || !ParseU64(f[0], &e.value)) continue;
    if (f.size() == 2 && f[1] == "kB") {
      e.in_bytes = true;
      e.value *= 1024;
    } else if (f.size() != 1) {
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

StatusOr<LoadAvg> ParseLoadavg(std::string_view text) {
  std::vector<std::string_view> f = SplitFields(text, " \t\n");
  LoadAvg l;
  size_t slash = f.size() >= 4 ? f[3].find('/') : std::string_view::npos;
  if (f.size() < 4 || !ParseDouble(f[0], &l.avg1) || !ParseDouble(f[1], &l.avg5) ||
      !ParseDouble(f[2], &l.avg15) || slash == std::string_view::npos ||
      !ParseU64(f[3].substr(0, slash), &l.runnable) ||
      !ParseU64(f[3].substr(slash + 1), &l.tasks)) {
    return absl::InvalidArgumentError(StrCat("loadavg: cannot parse '", Trim(text), "'"));
  }
  return l;
}

StatusOr<ProcStat> ParseProcStat(std::string_view text) {
  size_t rp = text.rfind(')');
  if (rp == std::string_view::npos) return absl::InvalidArgumentError("stat: no ')' after comm");
  // After ") ": state(3) ppid(4) ... utime(14) stime(15) ... num_threads(20), 1-based.
  std::vector<std::string_view> f = SplitFields(text.substr(rp + 1), " \t\n");
  ProcStat s;
  if (f.size() < 18 || !ParseU64(f[11], &s.utime_ticks) || !ParseU64(f[12], &s.stime_ticks) ||
      !ParseU64(f[17], &s.threads)) {
    return absl::InvalidArgumentError("stat: too few or malformed fields");
  }
  return s;
}

StatusOr<uint64_t> ParseStatusKb(std::string_view status, std::string_view key) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t nl = status.find('\n', pos);
    std::string_view line = status.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? status.size() : nl + 1;
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::vector<std::string_view> f = SplitFields(line.substr(key.size() + 1), " \t\n");
      uint64_t v = 0;
      if (f.size() == 2 && f[1] == "kB" && ParseU64(f[0], &v)) return v * 1024;
      break;
    }
  }
  return absl::NotFoundError(StrCat("no '", key, ":' line in kB"));
}

std::string CollectMetrics(const AgentCounters& counters) {
  MetricsWriter w;

  // ---- the agent process ----
  StatusOr<std::string> status = ReadFileString("/proc/self/status", 64 << 10);
  if (status.ok()) {
    StatusOr<uint64_t> rss = ParseStatusKb(*status, "VmRSS");
    if (rss.ok()) {
      w.Family("kata_agent_process_resident_memory_bytes", "gauge",
               "Resident set size of the agent process (VmRSS).");
      w.Sample(*rss);
    }
  }
  w.Family("kata_agent_process_open_fds", "gauge", "Open file descriptors of the agent.");
  // Minus one: the directory stream counting them.
  uint64_t fds = CountNumericEntries("/proc/self/fd");
  w.Sample(fds > 0 ? fds - 1 : 0);
  StatusOr<std::string> stat = ReadFileString("/proc/self/stat", 4096);
  StatusOr<ProcStat> ps = stat.ok() ? ParseProcStat(*stat) : StatusOr<ProcStat>(stat.status());
  if (ps.ok()) {
    w.Family("kata_agent_process_threads", "gauge", "Threads of the agent process.");
    w.Sample(ps->threads);
    double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
    w.Family("kata_agent_process_cpu_seconds_total", "counter",
             "CPU time the agent process spent, by mode.");
    w.Sample(static_cast<double>(ps->utime_ticks) / tck, {{"mode", "user"}});
    w.Sample(static_cast<double>(ps->stime_ticks) / tck, {{"mode", "system"}});
  } else {
    log::Warn("metrics: /proc/self/stat").Kv("error", ps.status().ToString());
  }

  // ---- the guest ----
  StatusOr<std::string> meminfo = ReadFileString("/proc/meminfo", 64 << 10);
  if (meminfo.ok()) {
    std::vector<MeminfoEntry> entries = ParseMeminfo(*meminfo);
    w.Family("kata_guest_meminfo_bytes", "gauge",
             "Guest /proc/meminfo entries given in kB, in bytes.");
    for (const MeminfoEntry& e : entries) {
      if (e.in_bytes) w.Sample(e.value, {{"field", e.name}});
    }
    w.Family("kata_guest_meminfo_count", "gauge", "Guest /proc/meminfo entries without a unit.");
    for (const MeminfoEntry& e : entries) {
      if (!e.in_bytes) w.Sample(e.value, {{"field", e.name}});
    }
  }
  StatusOr<std::string> la = ReadFileString("/proc/loadavg", 4096);
  StatusOr<LoadAvg> load = la.ok() ? ParseLoadavg(*la) : StatusOr<LoadAvg>(la.status());
  if (load.ok()) {
    w.Family("kata_guest_load", "gauge", "Guest load average over the window.");
    w.Sample(load->avg1, {{"window", "1m"}});
    w.Sample(load->avg5, {{"window", "5m"}});
    w.Sample(load->avg15, {{"window", "15m"}});
    w.Family("kata_guest_tasks_runnable", "gauge", "Guest tasks currently runnable.");
    w.Sample(load->runnable);
  }
  w.Family("kata_guest_processes", "gauge", "Processes in the guest (entries of /proc).");
  w.Sample(CountNumericEntries("/proc"));
  w.Family("kata_guest_zombie_processes", "gauge",
           "Guest processes that exited and were not yet waited for (state Z).");
  w.Sample(CountZombies());
  StatusOr<std::string> online = ReadFileString("/sys/devices/system/cpu/online", 4096);
  if (online.ok()) {
    w.Family("kata_guest_cpus_online", "gauge", "Online CPUs of the guest.");
    w.Sample(CountCpuList(*online));
  }

  // ---- the agent's own state ----
  w.Family("kata_agent_containers", "gauge", "Containers the agent manages.");
  w.Sample(counters.containers);
  w.Family("kata_agent_rpc_worker_threads", "gauge",
           "Threads of the RPC worker pool (idle ones above a reserve of 4 exit after 30 s).");
  w.Sample(counters.rpc_workers);
  w.Family("kata_agent_rpc_calls_total", "counter", "Calls of each agent API method.");
  for (const auto& [method, c] : counters.rpcs) w.Sample(c.first, {{"method", method}});
  w.Family("kata_agent_rpc_errors_total", "counter",
           "Calls of each agent API method that ended with an error status.");
  for (const auto& [method, c] : counters.rpcs) w.Sample(c.second, {{"method", method}});
  return w.Take() + counters.extra;
}

}  // namespace kata
