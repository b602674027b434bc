#include "runtime/cgroup_config.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace kata {
namespace {

Status Invalid(std::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(StrCat(field, ": ", why));
}
Status Invalid(std::string_view field, const char* why) {
  return absl::InvalidArgumentError(StrCat(field, ": ", why));
}
Status Invalid(std::string_view field, const std::string& why) {
  return absl::InvalidArgumentError(StrCat(field, ": ", why));
}

bool SystemdNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// "slice:prefix:name" as upstream recognizes it: three fields of [\w.-]*.
bool IsSystemdForm(std::string_view p) {
  if (std::count(p.begin(), p.end(), ':') != 2) return false;
  return std::all_of(p.begin(), p.end(), [](char c) { return c == ':' || SystemdNameChar(c); });
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice"; "-.slice" (the root slice) -> "".
StatusOr<std::string> ExpandSlice(std::string_view slice) {
  if (!EndsWith(slice, ".slice") || slice.find('/') != std::string_view::npos)
    return Invalid("linux.cgroupsPath", StrCat("\"", slice, "\" is not a slice name"));
  if (slice == "-.slice") return std::string();
  std::string_view base = slice.substr(0, slice.size() - 6);
  std::string path, prefix;
  size_t start = 0;
  while (start <= base.size()) {
    size_t dash = base.find('-', start);
    if (dash == std::string_view::npos) dash = base.size();
    std::string_view part = base.substr(start, dash - start);
    if (part.empty())
      return Invalid("linux.cgroupsPath", StrCat("\"", slice, "\" is not a valid slice name"));
    if (!path.empty()) path += '/';
    path += StrCat(prefix, part, ".slice");
    prefix += StrCat(part, "-");
    start = dash + 1;
  }
  return path;
}

std::optional<int64_t> Given(int64_t v) { return v == 0 ? std::nullopt : std::optional(v); }
std::optional<uint64_t> GivenU(uint64_t v) { return v == 0 ? std::nullopt : std::optional(v); }

// Limits: 0 not given, -1 no limit, anything else below 0 is an error.
Status Limit(int64_t v, std::string_view field, std::optional<int64_t>* out) {
  if (v < -1) return Invalid(field, StrCat(v, " is neither a limit nor -1 (no limit)"));
  *out = Given(v);
  return absl::OkStatus();
}

std::string LimitText(int64_t v) { return v < 0 ? std::string("max") : std::to_string(v); }

Status ParseThrottle(const google::protobuf::RepeatedPtrField<grpc::LinuxThrottleDevice>& in,
                     std::string_view field, std::vector<ThrottleDevice>* out) {
  for (int i = 0; i < in.size(); i++) {
    const auto& t = in[i];
    if (t.major() < 0 || t.minor() < 0)
      return Invalid(StrCat(field, "[", i, "]"), "a throttled device needs its major and minor");
    out->push_back({t.major(), t.minor(), t.rate()});
  }
  return absl::OkStatus();
}

bool ValidPageSize(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
  if (i == 0 || s[0] == '0') return false;
  std::string_view unit = s.substr(i);
  return unit == "KB" || unit == "MB" || unit == "GB";
}

// Files through which `unified` could take the tree away from the agent.
const std::set<std::string_view>& ForbiddenUnified() {
  static const std::set<std::string_view> s = {
      "cgroup.procs",  "cgroup.threads", "cgroup.subtree_control", "cgroup.kill",
      "cgroup.freeze", "cgroup.type",    "cgroup.max.depth",       "cgroup.max.descendants",
  };
  return s;
}

}  // namespace

StatusOr<std::string> CgroupRelativePath(std::string_view p, std::string_view container_id) {
  if (p.find('\0') != std::string_view::npos)
    return Invalid("linux.cgroupsPath", "contains a NUL byte");
  if (p.empty()) return std::string(container_id);
  if (IsSystemdForm(p)) {
    size_t c1 = p.find(':'), c2 = p.find(':', c1 + 1);
    std::string_view slice = p.substr(0, c1), prefix = p.substr(c1 + 1, c2 - c1 - 1),
                     name = p.substr(c2 + 1);
    ASSIGN_OR_RETURN(std::string path, ExpandSlice(slice.empty() ? "system.slice" : slice));
    std::string unit;
    if (name.empty()) name = container_id;
    if (EndsWith(name, ".slice")) {
      unit = std::string(name);
    } else {
      unit = prefix.empty() ? StrCat(name, ".scope") : StrCat(prefix, "-", name, ".scope");
    }
    return path.empty() ? unit : StrCat(path, "/", unit);
  }
  std::string out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..")
      return Invalid("linux.cgroupsPath", StrCat("\"", p, "\": \"", part, "\" is not allowed"));
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty())
    return Invalid("linux.cgroupsPath",
                   StrCat("\"", p, "\" names the containers' parent cgroup itself"));
  return out;
}

StatusOr<CgroupResources> ParseResources(const grpc::LinuxResources& r, std::string_view where) {
  CgroupResources out;
  auto f = [&](std::string_view name) { return StrCat(where, ".", name); };
  if (r.has_memory()) {
    const auto& m = r.memory();
    RETURN_IF_ERROR(Limit(m.limit(), f("Memory.Limit"), &out.memory_limit));
    RETURN_IF_ERROR(Limit(m.reservation(), f("Memory.Reservation"), &out.memory_reservation));
    RETURN_IF_ERROR(Limit(m.swap(), f("Memory.Swap"), &out.memory_swap));
    out.swappiness = GivenU(m.swappiness());
    if (m.swappiness() > 100) return Invalid(f("Memory.Swappiness"), "above 100");
    out.disable_oom_killer = m.disableoomkiller();
    out.kernel_memory = Given(m.kernel());
    out.kernel_tcp_memory = Given(m.kerneltcp());
    if (out.swappiness) out.ignored.push_back(f("Memory.Swappiness"));
    if (out.disable_oom_killer) out.ignored.push_back(f("Memory.DisableOOMKiller"));
    if (out.kernel_memory) out.ignored.push_back(f("Memory.Kernel"));
    if (out.kernel_tcp_memory) out.ignored.push_back(f("Memory.KernelTCP"));
  }
  if (r.has_cpu()) {
    const auto& c = r.cpu();
    out.cpu_shares = GivenU(c.shares());
    RETURN_IF_ERROR(Limit(c.quota(), f("CPU.Quota"), &out.cpu_quota));
    out.cpu_period = GivenU(c.period());
    if (c.period() > 1000000 || (c.period() != 0 && c.period() < 1000))
      return Invalid(f("CPU.Period"), StrCat(c.period(), " is outside 1000..1000000 us"));
    if (!c.cpus().empty()) {
      if (Status st = ValidateCpuList(c.cpus()); !st.ok())
        return Invalid(f("CPU.Cpus"), st.message());
      out.cpus = c.cpus();
    }
    if (!c.mems().empty()) {
      if (Status st = ValidateCpuList(c.mems()); !st.ok())
        return Invalid(f("CPU.Mems"), st.message());
      out.mems = c.mems();
    }
    if (c.realtimeruntime() != 0 || c.realtimeperiod() != 0)
      out.ignored.push_back(f("CPU.RealtimeRuntime/RealtimePeriod"));
  }
  if (r.has_pids()) {
    if (r.pids().limit() < 0) {
      out.pids_limit = -1;
    } else {
      out.pids_limit = Given(r.pids().limit());
    }
  }
  if (r.has_blockio()) {
    const auto& b = r.blockio();
    if (b.weight() != 0) {
      if (b.weight() < 10 || b.weight() > 1000)
        return Invalid(f("BlockIO.Weight"), StrCat(b.weight(), " is outside 10..1000"));
      out.blkio_weight = b.weight();
    }
    if (b.leafweight() != 0) out.ignored.push_back(f("BlockIO.LeafWeight"));
    for (int i = 0; i < b.weightdevice_size(); i++) {
      const auto& w = b.weightdevice(i);
      std::string field = f(StrCat("BlockIO.WeightDevice[", i, "]"));
      if (w.major() < 0 || w.minor() < 0)
        return Invalid(field, "a weighted device needs its major and minor");
      if (w.leafweight() != 0) out.ignored.push_back(field + ".LeafWeight");
      if (w.weight() == 0) continue;
      if (w.weight() < 10 || w.weight() > 1000)
        return Invalid(field + ".Weight", StrCat(w.weight(), " is outside 10..1000"));
      out.weight_devices.push_back({w.major(), w.minor(), w.weight()});
    }
    RETURN_IF_ERROR(ParseThrottle(b.throttlereadbpsdevice(), f("BlockIO.ThrottleReadBpsDevice"),
                                  &out.read_bps));
    RETURN_IF_ERROR(ParseThrottle(b.throttlewritebpsdevice(), f("BlockIO.ThrottleWriteBpsDevice"),
                                  &out.write_bps));
    RETURN_IF_ERROR(ParseThrottle(b.throttlereadiopsdevice(), f("BlockIO.ThrottleReadIOPSDevice"),
                                  &out.read_iops));
    RETURN_IF_ERROR(ParseThrottle(b.throttlewriteiopsdevice(), f("BlockIO.ThrottleWriteIOPSDevice"),
                                  &out.write_iops));
  }
  for (int i = 0; i < r.hugepagelimits_size(); i++) {
    const auto& h = r.hugepagelimits(i);
    if (!ValidPageSize(h.pagesize()))
      return Invalid(f(StrCat("HugepageLimits[", i, "].Pagesize")),
                     StrCat("\"", h.pagesize(), "\" is not a page size like 2MB or 1GB"));
    out.hugepage_limits.push_back({h.pagesize(), h.limit()});
  }
  if (r.has_network() && (r.network().classid() != 0 || r.network().priorities_size() > 0))
    out.ignored.push_back(f("Network"));
  if (r.devices_size() > 0) {
    std::vector<DeviceRule> rules;
    for (int i = 0; i < r.devices_size(); i++) {
      const auto& d = r.devices(i);
      std::string field = f(StrCat("Devices[", i, "]"));
      DeviceRule rule;
      rule.allow = d.allow();
      if (d.type().empty() || d.type() == "a") {
        rule.type = 'a';
      } else if (d.type() == "b" || d.type() == "c") {
        rule.type = d.type()[0];
      } else {
        return Invalid(field + ".Type", StrCat("\"", d.type(), "\" is not one of a, b, c"));
      }
      // As upstream reads the API: a number above 0, or any (0 cannot be told from unset).
      if (d.major() > 0xfff || d.minor() > 0xfffff)
        return Invalid(field, "major/minor out of range");
      rule.major = d.major() > 0 ? d.major() : -1;
      rule.minor = d.minor() > 0 ? d.minor() : -1;
      StatusOr<uint32_t> access = ParseDeviceAccess(d.access());
      if (!access.ok()) return Invalid(field + ".Access", access.status().message());
      rule.access = *access;
      rules.push_back(rule);
    }
    if (rules.size() > kMaxDeviceRules)
      return Invalid(f("Devices"), StrCat("more than ", kMaxDeviceRules, " rules"));
    out.devices = std::move(rules);
  }
  return out;
}

Status ValidateUnifiedName(std::string_view name) {
  static const std::set<std::string_view> kControllers = {
      "cgroup", "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc"};
  size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size())
    return absl::InvalidArgumentError(StrCat("\"", name, "\" is not a <controller>.<file> name"));
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              (c >= 'A' && c <= 'Z');
    if (!ok) return absl::InvalidArgumentError(StrCat("\"", name, "\": character '", c, "'"));
  }
  if (!kControllers.count(name.substr(0, dot)))
    return absl::InvalidArgumentError(
        StrCat("\"", name, "\": unknown controller \"", name.substr(0, dot), "\""));
  if (ForbiddenUnified().count(name))
    return absl::InvalidArgumentError(StrCat("\"", name, "\" is managed by the agent"));
  return absl::OkStatus();
}

Status ParseUnifiedAnnotations(const google::protobuf::Map<std::string, std::string>& annotations,
                               CgroupResources* r) {
  for (const auto& [k, v] : annotations) {
    if (k.rfind(kUnifiedAnnotationPrefix, 0) != 0) continue;
    std::string name = k.substr(kUnifiedAnnotationPrefix.size());
    if (Status st = ValidateUnifiedName(name); !st.ok())
      return Invalid(StrCat("annotations[", k, "]"), st.message());
    if (v.find('\0') != std::string::npos)
      return Invalid(StrCat("annotations[", k, "]"), "value contains a NUL byte");
    r->unified[name] = v;
  }
  return absl::OkStatus();
}

uint64_t CpuSharesToWeight(uint64_t shares) {
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t BlkioWeightToIoWeight(uint64_t weight) {
  weight = std::clamp<uint64_t>(weight, 10, 1000);
  return 1 + ((weight - 10) * 9999) / 990;
}

StatusOr<int64_t> SwapToCgroupV2(int64_t swap, int64_t limit) {
  if (limit == -1 && swap == 0) return -1;  // "memory unlimited" means swap too
  if (swap == -1 || swap == 0) return swap;
  if (limit == 0 || limit == -1)
    return absl::InvalidArgumentError("a swap limit needs a memory limit");
  if (swap < limit)
    return absl::InvalidArgumentError(
        StrCat("memory+swap limit ", swap, " is below the memory limit ", limit));
  return swap - limit;
}

std::string CpuMaxValue(std::optional<int64_t> quota, std::optional<uint64_t> period,
                        std::string_view current) {
  std::string q;
  if (quota) {
    q = LimitText(*quota);
  } else {
    size_t sp = current.find(' ');
    q = current.empty() ? std::string("max") : std::string(current.substr(0, sp));
  }
  uint64_t per = period.value_or(100000);
  if (!period && !current.empty()) {
    size_t sp = current.find(' ');
    if (sp != std::string_view::npos) {
      std::string_view rest = current.substr(sp + 1);
      while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
      uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
      if (ec == std::errc() && ptr == rest.data() + rest.size() && v > 0) per = v;
    }
  }
  return StrCat(q, " ", per);
}

Status ValidateCpuList(std::string_view list) {
  if (list.empty()) return absl::InvalidArgumentError("empty list");
  size_t i = 0;
  auto number = [&](uint64_t* v) {
    size_t s = i;
    *v = 0;
    while (i < list.size() && list[i] >= '0' && list[i] <= '9') {
      *v = *v * 10 + static_cast<uint64_t>(list[i] - '0');
      if (*v > 1u << 20) return false;
      i++;
    }
    return i > s;
  };
  for (;;) {
    uint64_t a, b;
    if (!number(&a)) break;
    if (i < list.size() && list[i] == '-') {
      i++;
      if (!number(&b) || b < a) break;
    }
    if (i == list.size()) return absl::OkStatus();
    if (list[i] != ',') break;
    i++;
  }
  return absl::InvalidArgumentError(StrCat("\"", list, "\" is not a list like 0-3,5"));
}

StatusOr<std::vector<CgroupWrite>> CgroupWrites(const CgroupResources& r,
                                                std::string_view current_cpu_max) {
  std::vector<CgroupWrite> w;
  if (r.memory_limit) w.push_back({"memory.max", LimitText(*r.memory_limit)});
  if (r.memory_swap || (r.memory_limit && *r.memory_limit == -1)) {
    StatusOr<int64_t> swap = SwapToCgroupV2(r.memory_swap.value_or(0), r.memory_limit.value_or(0));
    if (!swap.ok()) return Invalid("Memory.Swap", swap.status().message());
    if (*swap != 0) w.push_back({"memory.swap.max", LimitText(*swap)});
  }
  if (r.memory_reservation) w.push_back({"memory.low", LimitText(*r.memory_reservation)});
  if (r.cpu_shares) w.push_back({"cpu.weight", std::to_string(CpuSharesToWeight(*r.cpu_shares))});
  if (r.cpu_quota || r.cpu_period)
    w.push_back({"cpu.max", CpuMaxValue(r.cpu_quota, r.cpu_period, current_cpu_max)});
  if (!r.cpus.empty()) w.push_back({"cpuset.cpus", r.cpus});
  if (!r.mems.empty()) w.push_back({"cpuset.mems", r.mems});
  if (r.pids_limit) w.push_back({"pids.max", LimitText(*r.pids_limit)});
  if (r.blkio_weight)
    w.push_back({"io.weight", StrCat("default ", BlkioWeightToIoWeight(*r.blkio_weight))});
  for (const WeightDevice& d : r.weight_devices)
    w.push_back({"io.weight", StrCat(d.major, ":", d.minor, " ", BlkioWeightToIoWeight(d.weight))});
  // io.max: one line per device with every limit given for it.
  std::map<std::pair<int64_t, int64_t>, std::string> io_max;
  auto add = [&](const std::vector<ThrottleDevice>& v, const char* key) {
    for (const ThrottleDevice& t : v) {
      std::string& line = io_max[{t.major, t.minor}];
      line += StrCat(" ", key, "=", t.rate == 0 ? std::string("max") : std::to_string(t.rate));
    }
  };
  add(r.read_bps, "rbps");
  add(r.write_bps, "wbps");
  add(r.read_iops, "riops");
  add(r.write_iops, "wiops");
  for (const auto& [dev, line] : io_max)
    w.push_back({"io.max", StrCat(dev.first, ":", dev.second, line)});
  for (const HugepageLimit& h : r.hugepage_limits)
    w.push_back({StrCat("hugetlb.", h.page_size, ".max"), std::to_string(h.limit)});
  for (const auto& [file, value] : r.unified) {
    // A unified entry wins over a converted value of the same single-valued file.
    if (file != "io.max" && file != "io.weight") {
      w.erase(
          std::remove_if(w.begin(), w.end(), [&](const CgroupWrite& x) { return x.file == file; }),
          w.end());
    }
    w.push_back({file, value});
  }
  return w;
}

uint64_t ContainersMemoryMax(uint64_t mem_total, uint64_t reserve, uint64_t min_bytes) {
  if (mem_total <= reserve || mem_total - reserve < min_bytes) return min_bytes;
  return mem_total - reserve;
}

uint64_t DefaultMemoryReserve(uint64_t mem_total) {
  return std::clamp<uint64_t>(mem_total / 16, 64ull << 20, 256ull << 20);
}

std::optional<uint64_t> MemTotalFromMeminfo(std::string_view meminfo) {
  size_t at = 0;
  while (at < meminfo.size()) {
    size_t nl = meminfo.find('\n', at);
    if (nl == std::string_view::npos) nl = meminfo.size();
    std::string_view line = meminfo.substr(at, nl - at);
    at = nl + 1;
    if (line.rfind("MemTotal:", 0) != 0) continue;
    line.remove_prefix(9);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    uint64_t kb = 0;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), kb);
    if (ec != std::errc() || ptr == line.data()) return std::nullopt;
    return kb * 1024;
  }
  return std::nullopt;
}

}  // namespace kata
