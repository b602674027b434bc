#include "guest/hotplug.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"

#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

// Numbers N of the entries "<prefix>N" in dir, sorted.
std::vector<uint64_t> NumberedEntries(const std::string& dir, std::string_view prefix) {
  std::vector<uint64_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) continue;
    std::string_view num = name.substr(prefix.size());
    if (!std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    out.push_back(strtoull(std::string(num).c_str(), nullptr, 10));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One pass: onlines up to `want` offline CPUs; returns how many it onlined.
StatusOr<int> OnlineCpuPass(const std::string& cpu_dir, uint32_t want) {
  int done = 0;
  for (uint64_t n : NumberedEntries(cpu_dir, "cpu")) {
    if (static_cast<uint32_t>(done) >= want) break;
    std::string path = StrCat(cpu_dir, "/cpu", n, "/online");
    StatusOr<std::string> v = ReadFileString(path, 16);
    if (!v.ok() || Trimmed(*v) != "0") continue;  // cpu0 has no online file; online ones: 1
    Status st = WriteFileString(path, "1");
    if (!st.ok()) return Annotate(st, StrCat("online cpu", n));
    log::Info("cpu onlined").Kv("cpu", n);
    done++;
  }
  return done;
}

}  // namespace

uint64_t CountCpuList(std::string_view list) {
  uint64_t n = 0;
  while (!list.empty() && (list.back() == '\n' || list.back() == ' ')) list.remove_suffix(1);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string r(list.substr(0, comma));
    size_t dash = r.find('-');
    char* end = nullptr;
    uint64_t a = strtoull(r.c_str(), &end, 10);
    if (dash == std::string::npos) {
      if (end != r.c_str() && *end == '\0') n++;
    } else {
      uint64_t b = strtoull(r.c_str() + dash + 1, &end, 10);
      if (*end == '\0' && b >= a) n += b - a + 1;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return n;
}

StatusOr<int> OnlineMemoryBlocks(const std::string& memory_dir) {
  int done = 0;
  Status first_error = absl::OkStatus();
  for (uint64_t n : NumberedEntries(memory_dir, "memory")) {
    std::string path = StrCat(memory_dir, "/memory", n, "/state");
    StatusOr<std::string> v = ReadFileString(path, 32);
    if (!v.ok() || Trimmed(*v) != "offline") continue;
    // One block that cannot go online (the kernel found no room for its memmap, say) does
    // not keep the others offline: try them all, report the first failure.
    Status st = WriteFileString(path, "online");
    if (!st.ok()) {
      if (first_error.ok()) first_error = Annotate(st, StrCat("online memory block ", n));
      continue;
    }
    done++;
  }
  if (done > 0) log::Info("memory blocks onlined").Kv("count", done);
  if (!first_error.ok()) return first_error;
  return done;
}

StatusOr<int> OnlineHotAddedMemory(CallContext& ctx, std::chrono::milliseconds timeout,
                                   const std::string& memory_dir) {
  auto start = std::chrono::steady_clock::now();
  StatusOr<std::string> auto_online = ReadFileString(StrCat(memory_dir, "/auto_online_blocks"), 64);
  bool kernel_onlines = auto_online.ok() && Trimmed(*auto_online) != "offline";
  int total = 0;
  while (true) {
    ASSIGN_OR_RETURN(int n, OnlineMemoryBlocks(memory_dir));
    total += n;
    auto waited = std::chrono::steady_clock::now() - start;
    // After some went online, look again: more of the same DIMM may have been added since.
    if (n > 0 && waited < timeout) continue;
    if (total > 0 || kernel_onlines) return total;
    if (waited >= timeout) {
      log::Info("no offline memory block appeared")
          .Kv("waited_ms", std::chrono::duration_cast<std::chrono::milliseconds>(waited).count());
      return 0;
    }
    Status alive = ctx.Alive();
    if (!alive.ok()) return Status(alive.code(), StrCat("onlining memory: ", alive.message()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

StatusOr<int> OnlineCpus(CallContext& ctx, uint32_t count, std::chrono::milliseconds timeout,
                         const std::string& cpu_dir) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uint32_t done = 0;
  while (true) {
    ASSIGN_OR_RETURN(int n, OnlineCpuPass(cpu_dir, count - done));
    done += static_cast<uint32_t>(n);
    if (done >= count) return static_cast<int>(done);
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(StrCat("onlined ", done, " of ", count, " CPU(s) within ",
                                                timeout.count(), " ms: no more offline CPUs in ",
                                                cpu_dir, " (was the CPU hot-added?)"));
    }
    Status alive = ctx.Alive();
    if (!alive.ok()) {
      return Status(alive.code(),
                    StrCat("onlined ", done, " of ", count, " CPU(s): ", alive.message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

StatusOr<uint64_t> MemoryBlockSize(const std::string& memory_dir) {
  std::string path = StrCat(memory_dir, "/block_size_bytes");
  ASSIGN_OR_RETURN(std::string s, ReadFileString(path, 64));
  s = Trimmed(s);
  char* end = nullptr;
  uint64_t v = strtoull(s.c_str(), &end, 16);
  if (s.empty() || *end != '\0' || v == 0) {
    return absl::InternalError(StrCat(path, ": not a hex size: '", s, "'"));
  }
  return v;
}

bool MemoryProbeSupported(const std::string& memory_dir) {
  return access(StrCat(memory_dir, "/probe").c_str(), W_OK) == 0;
}

Status ProbeMemory(const std::vector<uint64_t>& addrs, const std::string& memory_dir) {
  if (addrs.empty()) return absl::InvalidArgumentError("no memory address to probe");
  if (!MemoryProbeSupported(memory_dir)) {
    return absl::FailedPreconditionError(
        StrCat(memory_dir, "/probe is missing: the guest kernel has no ARCH_MEMORY_PROBE"));
  }
  ASSIGN_OR_RETURN(uint64_t block, MemoryBlockSize(memory_dir));
  for (uint64_t a : addrs) {
    if (a % block != 0) {
      return absl::InvalidArgumentError(StrCat("memory address 0x", absl::StrCat(absl::Hex(a)),
                                               " is not a multiple of the memory block size 0x",
                                               absl::StrCat(absl::Hex(block))));
    }
  }
  for (uint64_t a : addrs) {
    char buf[32];
    snprintf(buf, sizeof buf, "0x%" PRIx64, a);
    Status st = WriteFileString(StrCat(memory_dir, "/probe"), buf);
    if (!st.ok()) {
      // The kernel answers EEXIST for memory it already has, EINVAL for a range it refuses.
      absl::StatusCode code = absl::StatusCode::kInternal;
      if (st.message().find("EEXIST") != absl::string_view::npos) {
        code = absl::StatusCode::kAlreadyExists;
      } else if (st.message().find("EINVAL") != absl::string_view::npos) {
        code = absl::StatusCode::kInvalidArgument;
      }
      return Status(code, StrCat("probe memory at ", buf, ": ", st.message()));
    }
    log::Info("memory probed").Kv("addr", buf);
  }
  return absl::OkStatus();
}

}  // namespace kata
