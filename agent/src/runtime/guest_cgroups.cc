#include "runtime/guest_cgroups.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "runtime/cgroup_config.h"
#include "runtime/cgroups.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

constexpr uint64_t kAgentMemoryMin = 32ull << 20;

StatusOr<uint64_t> MemTotal() {
  ASSIGN_OR_RETURN(std::string meminfo, ReadFileString("/proc/meminfo"));
  std::optional<uint64_t> v = MemTotalFromMeminfo(meminfo);
  if (!v) return absl::InternalError("/proc/meminfo has no MemTotal");
  return *v;
}

Status MakeCgroup(const std::string& path) {
  if (mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) return ErrnoError(errno, "mkdir ", path);
  return absl::OkStatus();
}

// The fields of one uevent: "ACTION=online\0SUBSYSTEM=memory\0...".
bool IsMemoryBlockEvent(std::string_view msg) {
  bool memory = false, online = false;
  size_t at = 0;
  while (at < msg.size()) {
    size_t end = msg.find('\0', at);
    if (end == std::string_view::npos) end = msg.size();
    std::string_view f = msg.substr(at, end - at);
    if (f == "SUBSYSTEM=memory") memory = true;
    if (f == "ACTION=online" || f == "ACTION=offline") online = true;
    at = end + 1;
  }
  return memory && online;
}

}  // namespace

StatusOr<std::unique_ptr<GuestCgroups>> GuestCgroups::SetUp(const Options& o) {
  if (!PureCgroup2()) {
    return absl::FailedPreconditionError(
        StrCat(kCgroupRoot, " is not a cgroup2 mount: cgroups are not managed"));
  }
  std::unique_ptr<GuestCgroups> g(new GuestCgroups());
  g->opts_ = o;
  g->agent_ = StrCat(kCgroupRoot, "/agent");
  g->containers_ = StrCat(kCgroupRoot, "/sandbox");
  RETURN_IF_ERROR(EnableControllers(kCgroupRoot));
  RETURN_IF_ERROR(MakeCgroup(g->agent_));
  RETURN_IF_ERROR(WriteFileString(g->agent_ + "/cgroup.procs", std::to_string(getpid())));
  RETURN_IF_ERROR(WriteFileString("/proc/self/oom_score_adj", "-1000"));
  RETURN_IF_ERROR(MakeCgroup(g->containers_));
  RETURN_IF_ERROR(EnableControllers(g->containers_));
  ASSIGN_OR_RETURN(uint64_t total, MemTotal());
  uint64_t reserve = o.memory_reserve ? o.memory_reserve : DefaultMemoryReserve(total);
  uint64_t min = std::min(kAgentMemoryMin, reserve / 2);
  if (Status st = WriteFileString(g->agent_ + "/memory.min", std::to_string(min)); !st.ok()) {
    log::Warn("cgroups: no memory.min for the agent").Kv("error", st.ToString());
  }
  RETURN_IF_ERROR(g->UpdateContainersMemoryMax());
  log::Info("cgroups: guest tree ready")
      .Kv("agent_cgroup", g->agent_)
      .Kv("containers_cgroup", g->containers_)
      .Kv("mem_total", total)
      .Kv("reserve", reserve)
      .Kv("agent_memory_min", min)
      .Kv("containers_memory_max", g->memory_max_.load());
  return g;
}

Status GuestCgroups::UpdateContainersMemoryMax() {
  std::lock_guard<std::mutex> lk(mu_);
  ASSIGN_OR_RETURN(uint64_t total, MemTotal());
  uint64_t reserve = opts_.memory_reserve ? opts_.memory_reserve : DefaultMemoryReserve(total);
  uint64_t max = ContainersMemoryMax(total, reserve);
  if (max == memory_max_.load()) return absl::OkStatus();
  RETURN_IF_ERROR(WriteFileString(containers_ + "/memory.max", std::to_string(max)));
  uint64_t old = memory_max_.exchange(max);
  if (old != 0) {
    log::Info("cgroups: containers' memory.max re-computed")
        .Kv("mem_total", total)
        .Kv("from", old)
        .Kv("to", max);
  }
  return absl::OkStatus();
}

Status GuestCgroups::WatchMemoryHotplug() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT));
  if (!fd) return ErrnoError(errno, "uevent socket");
  struct sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = 1;  // the kernel's own uevents
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0)
    return ErrnoError(errno, "bind the uevent socket");
  std::thread([this, f = fd.release()] { HotplugLoop(f); }).detach();
  return absl::OkStatus();
}

void GuestCgroups::HotplugLoop(int raw) {
  UniqueFd fd(raw);
  std::string buf(8192, '\0');
  for (;;) {
    ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue;
      log::Error("cgroups: uevent socket failed; memory hot-plug no longer followed")
          .Kv("error", ErrnoText(errno));
      return;
    }
    if (!IsMemoryBlockEvent(std::string_view(buf.data(), static_cast<size_t>(n)))) continue;
    // A DIMM comes as one event per memory block: let them all arrive, then re-compute once.
    for (;;) {
      struct pollfd p = {fd.get(), POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) break;
      if (recv(fd.get(), buf.data(), buf.size(), 0) < 0 && errno != EINTR && errno != ENOBUFS)
        break;
    }
    if (Status st = UpdateContainersMemoryMax(); !st.ok()) {
      log::Error("cgroups: containers' memory.max not re-computed").Kv("error", st.ToString());
    }
  }
}

}  // namespace kata
