#include "runtime/cgroup_stats.h"

#include <charconv>
#include <limits>

namespace kata {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool ParseU64(std::string_view s, uint64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

template <typename F>
void ForEachLine(std::string_view text, F f) {
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = Trim(text.substr(at, nl - at));
    if (!line.empty()) f(line);
    at = nl + 1;
  }
}

uint64_t Get(const std::map<std::string, uint64_t>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

std::optional<uint64_t> ReadValue(const CgroupFileReader& read, const std::string& file) {
  std::optional<std::string> t = read(file);
  if (!t) return std::nullopt;
  return ParseLimitValue(*t);
}

std::optional<std::map<std::string, uint64_t>> ReadKeyed(const CgroupFileReader& read,
                                                         const std::string& file) {
  std::optional<std::string> t = read(file);
  if (!t) return std::nullopt;
  return ParseFlatKeyed(*t);
}

void AddEntry(google::protobuf::RepeatedPtrField<grpc::BlkioStatsEntry>* v, const IoStatLine& l,
              const char* op, uint64_t value) {
  grpc::BlkioStatsEntry* e = v->Add();
  e->set_major(l.major);
  e->set_minor(l.minor);
  e->set_op(op);
  e->set_value(value);
}

}  // namespace

std::map<std::string, uint64_t> ParseFlatKeyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  ForEachLine(text, [&](std::string_view line) {
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return;
    uint64_t v;
    if (ParseU64(Trim(line.substr(sp + 1)), &v)) out[std::string(line.substr(0, sp))] = v;
  });
  return out;
}

std::vector<IoStatLine> ParseIoStat(std::string_view text) {
  std::vector<IoStatLine> out;
  ForEachLine(text, [&](std::string_view line) {
    size_t sp = line.find(' ');
    std::string_view dev = line.substr(0, sp);
    size_t colon = dev.find(':');
    IoStatLine l;
    if (colon == std::string_view::npos || !ParseU64(dev.substr(0, colon), &l.major) ||
        !ParseU64(dev.substr(colon + 1), &l.minor))
      return;
    std::string_view rest = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    while (!rest.empty()) {
      size_t next = rest.find(' ');
      std::string_view kv = rest.substr(0, next);
      rest = next == std::string_view::npos ? "" : rest.substr(next + 1);
      size_t eq = kv.find('=');
      uint64_t v;
      if (eq != std::string_view::npos && ParseU64(kv.substr(eq + 1), &v))
        l.values[std::string(kv.substr(0, eq))] = v;
    }
    out.push_back(std::move(l));
  });
  return out;
}

std::optional<uint64_t> ParseLimitValue(std::string_view text) {
  text = Trim(text);
  if (text == "max") return kMax;
  uint64_t v;
  if (ParseU64(text, &v)) return v;
  return std::nullopt;
}

void FillCgroupStats(const CgroupFileReader& read, const std::vector<std::string>& hugepage_sizes,
                     grpc::CgroupStats* out) {
  if (auto cpu = ReadKeyed(read, "cpu.stat")) {
    grpc::CpuStats* c = out->mutable_cpu_stats();
    c->mutable_cpu_usage()->set_total_usage(Get(*cpu, "usage_usec") * 1000);
    c->mutable_cpu_usage()->set_usage_in_usermode(Get(*cpu, "user_usec") * 1000);
    c->mutable_cpu_usage()->set_usage_in_kernelmode(Get(*cpu, "system_usec") * 1000);
    c->mutable_throttling_data()->set_periods(Get(*cpu, "nr_periods"));
    c->mutable_throttling_data()->set_throttled_periods(Get(*cpu, "nr_throttled"));
    c->mutable_throttling_data()->set_throttled_time(Get(*cpu, "throttled_usec") * 1000);
  }

  if (std::optional<uint64_t> current = ReadValue(read, "memory.current")) {
    grpc::MemoryStats* m = out->mutable_memory_stats();
    m->set_use_hierarchy(true);
    grpc::MemoryData* u = m->mutable_usage();
    u->set_usage(*current);
    u->set_max_usage(ReadValue(read, "memory.peak").value_or(0));
    u->set_limit(ReadValue(read, "memory.max").value_or(kMax));
    if (auto ev = ReadKeyed(read, "memory.events")) u->set_failcnt(Get(*ev, "max"));
    if (std::optional<uint64_t> swap = ReadValue(read, "memory.swap.current")) {
      grpc::MemoryData* s = m->mutable_swap_usage();
      s->set_usage(*swap);
      s->set_max_usage(ReadValue(read, "memory.swap.peak").value_or(0));
      s->set_limit(ReadValue(read, "memory.swap.max").value_or(kMax));
      if (auto ev = ReadKeyed(read, "memory.swap.events")) s->set_failcnt(Get(*ev, "max"));
    }
    if (auto st = ReadKeyed(read, "memory.stat")) {
      m->set_cache(Get(*st, "file"));
      uint64_t kernel = st->count("kernel")
                            ? Get(*st, "kernel")
                            : Get(*st, "kernel_stack") + Get(*st, "pagetables") + Get(*st, "slab");
      m->mutable_kernel_usage()->set_usage(kernel);
      for (const auto& [k, v] : *st) (*m->mutable_stats())[k] = v;
    }
  }

  if (std::optional<uint64_t> current = ReadValue(read, "pids.current")) {
    out->mutable_pids_stats()->set_current(*current);
    uint64_t limit = ReadValue(read, "pids.max").value_or(kMax);
    out->mutable_pids_stats()->set_limit(limit == kMax ? 0 : limit);
  }

  if (std::optional<std::string> io = read("io.stat")) {
    grpc::BlkioStats* b = out->mutable_blkio_stats();
    for (const IoStatLine& l : ParseIoStat(*io)) {
      AddEntry(b->mutable_io_service_bytes_recursive(), l, "Read", Get(l.values, "rbytes"));
      AddEntry(b->mutable_io_service_bytes_recursive(), l, "Write", Get(l.values, "wbytes"));
      AddEntry(b->mutable_io_serviced_recursive(), l, "Read", Get(l.values, "rios"));
      AddEntry(b->mutable_io_serviced_recursive(), l, "Write", Get(l.values, "wios"));
    }
  }

  for (const std::string& size : hugepage_sizes) {
    std::optional<uint64_t> current = ReadValue(read, "hugetlb." + size + ".current");
    if (!current) continue;
    grpc::HugetlbStats& h = (*out->mutable_hugetlb_stats())[size];
    h.set_usage(*current);
    if (auto ev = ReadKeyed(read, "hugetlb." + size + ".events")) h.set_failcnt(Get(*ev, "max"));
  }
}

}  // namespace kata
