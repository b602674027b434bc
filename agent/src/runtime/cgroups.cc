#include "runtime/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "runtime/cgroup_stats.h"
#include "runtime/device_cgroup.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

// Creating and removing levels of the tree: one at a time, so a container being created
// under a level never races another container's removal of that (empty) level.
std::mutex g_tree_mu;

std::string TrimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

absl::StatusCode CodeForWrite(int err) {
  switch (err) {
    case EINVAL:
    case ERANGE:
    case EOVERFLOW:
      return absl::StatusCode::kInvalidArgument;
    case ENOENT:
    case EOPNOTSUPP:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

// "frozen 1" / "populated 0" of cgroup.events, read from an open fd from the start.
StatusOr<uint64_t> EventsValue(int fd, const char* key) {
  char buf[256];
  if (lseek(fd, 0, SEEK_SET) < 0) return ErrnoError(errno, "lseek cgroup.events");
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n < 0) return ErrnoError(errno, "read cgroup.events");
  std::map<std::string, uint64_t> m = ParseFlatKeyed(std::string_view(buf, static_cast<size_t>(n)));
  auto it = m.find(key);
  if (it == m.end()) return absl::InternalError(StrCat("cgroup.events has no \"", key, "\""));
  return it->second;
}

// The line of a per-device file ("254:0 rbps=..." in io.max) for one device, as it reads
// now, in a form that can be written back; `absent` when the device has none.
std::string DeviceLine(const std::string& content, std::string_view dev,
                       const std::string& absent) {
  std::istringstream in(content);
  std::string line;
  std::string prefix = StrCat(dev, " ");
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return absent;
}

void LogIgnored(const std::string& path, const CgroupResources& r) {
  if (r.ignored.empty()) return;
  std::string fields;
  for (const std::string& f : r.ignored) fields += (fields.empty() ? "" : ", ") + f;
  log::Info("cgroups: not applicable on cgroup v2, ignored")
      .Kv("cgroup", path)
      .Kv("fields", fields);
}

}  // namespace

bool PureCgroup2() {
  struct statfs fs;
  return statfs(kCgroupRoot, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

StatusOr<ContainerCgroupSpec> ParseContainerCgroupSpec(const grpc::Spec& spec,
                                                       const ContainerSpec& parsed,
                                                       std::string_view container_id) {
  ContainerCgroupSpec out;
  ASSIGN_OR_RETURN(out.relative_path, CgroupRelativePath(spec.linux().cgroupspath(), container_id));
  if (spec.linux().has_resources()) {
    ASSIGN_OR_RETURN(out.resources, ParseResources(spec.linux().resources(), "linux.resources"));
  }
  RETURN_IF_ERROR(ParseUnifiedAnnotations(spec.annotations(), &out.resources));
  if (out.resources.devices) {
    out.device_rules = *out.resources.devices;
  } else {
    out.device_rules = DefaultDeviceRules(parsed.devices);
    out.default_device_rules = true;
  }
  int64_t adj = spec.process().oomscoreadj();
  if (adj < -1000 || adj > 1000) {
    return absl::InvalidArgumentError(
        StrCat("process.oomScoreAdj: ", adj, " is outside -1000..1000"));
  }
  out.oom_score_adj = static_cast<int>(adj);
  return out;
}

Status WriteCgroupFile(int dir_fd, const std::string& file, std::string_view value,
                       std::string_view dir_path) {
  UniqueFd fd(openat(dir_fd, file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoErrorCode(CodeForWrite(errno), errno, "open ", dir_path, "/", file);
  // A cgroup file takes its value in one write(2); an empty value is a newline.
  std::string_view v = value.empty() ? std::string_view("\n") : value;
  ssize_t n;
  do {
    n = write(fd.get(), v.data(), v.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return ErrnoErrorCode(CodeForWrite(errno), errno, "write \"", value, "\" to ", dir_path, "/",
                          file);
  }
  if (static_cast<size_t>(n) != v.size())
    return absl::InternalError(StrCat("write to ", dir_path, "/", file, ": short write"));
  return absl::OkStatus();
}

StatusOr<std::string> ReadCgroupFile(int dir_fd, const std::string& file,
                                     std::string_view dir_path) {
  UniqueFd fd(openat(dir_fd, file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return ErrnoErrorCode(
        errno == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kInternal, errno, "open ",
        dir_path, "/", file);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read ", dir_path, "/", file);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) break;
  }
  return out;
}

Status EnableControllers(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string available, ReadFileString(dir + "/cgroup.controllers"));
  ASSIGN_OR_RETURN(std::string enabled, ReadFileString(dir + "/cgroup.subtree_control"));
  std::set<std::string> on;
  {
    std::istringstream in(enabled);
    std::string c;
    while (in >> c) on.insert(c);
  }
  std::vector<std::string> want;
  {
    std::istringstream in(available);
    std::string c;
    while (in >> c) {
      if (!on.count(c)) want.push_back(c);
    }
  }
  if (want.empty()) return absl::OkStatus();
  UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return ErrnoError(errno, "open ", dir);
  std::string all;
  for (const std::string& c : want) all += (all.empty() ? "+" : " +") + c;
  if (WriteCgroupFile(dfd.get(), "cgroup.subtree_control", all, dir).ok()) return absl::OkStatus();
  // One by one, to enable what can be and say what cannot.
  Status first = absl::OkStatus();
  for (const std::string& c : want) {
    Status st = WriteCgroupFile(dfd.get(), "cgroup.subtree_control", "+" + c, dir);
    if (!st.ok()) {
      log::Warn("cgroups: controller not enabled")
          .Kv("cgroup", dir)
          .Kv("controller", c)
          .Kv("error", st.ToString());
      if (first.ok()) first = st;
    }
  }
  // EBUSY: the level has processes of its own (cgroup v2's no-internal-process rule).
  if (!first.ok() && absl::StrContains(first.message(), "EBUSY")) return first;
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<ContainerCgroup>> ContainerCgroup::Create(const std::string& parent,
                                                                   const std::string& relative) {
  std::unique_ptr<ContainerCgroup> cg(new ContainerCgroup());
  std::lock_guard<std::mutex> tree(g_tree_mu);
  std::string cur = parent;
  size_t i = 0;
  while (i < relative.size()) {
    size_t j = relative.find('/', i);
    if (j == std::string::npos) j = relative.size();
    cur += "/" + relative.substr(i, j - i);
    const bool leaf = j == relative.size();
    i = j + 1;
    if (mkdir(cur.c_str(), 0755) == 0) {
      cg->created_.push_back(cur);
    } else if (errno != EEXIST) {
      Status st = ErrnoError(errno, "mkdir ", cur);
      for (auto it = cg->created_.rbegin(); it != cg->created_.rend(); ++it) rmdir(it->c_str());
      return st;
    } else if (leaf) {
      // Left over from an earlier container, or another container's.
      StatusOr<std::string> ev = ReadFileString(cur + "/cgroup.events");
      if (ev.ok() && ParseFlatKeyed(*ev)["populated"] != 0) {
        return absl::AlreadyExistsError(StrCat("cgroup ", cur, " is in use"));
      }
    }
    if (!leaf) {
      if (Status st = EnableControllers(cur); !st.ok()) {
        for (auto it = cg->created_.rbegin(); it != cg->created_.rend(); ++it) rmdir(it->c_str());
        return Annotate(st, StrCat("cgroup ", cur, " cannot hold a container's cgroup"));
      }
    }
  }
  cg->path_ = cur;
  cg->parent_ = parent;
  cg->dir_.reset(open(cur.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg->dir_) {
    Status st = ErrnoError(errno, "open ", cur);
    for (auto it = cg->created_.rbegin(); it != cg->created_.rend(); ++it) rmdir(it->c_str());
    return st;
  }
  return cg;
}

ContainerCgroup::~ContainerCgroup() = default;

Status ContainerCgroup::AddProcess(pid_t pid, int oom_score_adj) {
  RETURN_IF_ERROR(WriteCgroupFile(dir_.get(), "cgroup.procs", std::to_string(pid), path_));
  return WriteFileString(StrCat("/proc/", pid, "/oom_score_adj"), std::to_string(oom_score_adj));
}

Status ContainerCgroup::WriteAll(const std::vector<CgroupWrite>& writes,
                                 std::vector<CgroupWrite>* undo) {
  for (const CgroupWrite& w : writes) {
    if (undo) {
      StatusOr<std::string> old = ReadCgroupFile(dir_.get(), w.file, path_);
      if (!old.ok()) {
        Restore(*undo);
        return old.status();
      }
      std::string prev = TrimNewline(*old);
      if (w.file == "io.max" || w.file == "io.weight") {
        std::string dev = w.value.substr(0, w.value.find(' '));
        std::string absent = w.file == "io.max"
                                 ? StrCat(dev, " rbps=max wbps=max riops=max wiops=max")
                                 : StrCat(dev, " default");
        prev = dev == "default" ? DeviceLine(*old, "default", "default 100")
                                : DeviceLine(*old, dev, absent);
      }
      undo->push_back({w.file, prev});
    }
    Status st = WriteCgroupFile(dir_.get(), w.file, w.value, path_);
    if (!st.ok()) {
      if (undo) {
        undo->pop_back();  // not written
        Restore(*undo);
        return Annotate(st, StrCat("nothing changed (", undo->size(), " earlier value",
                                   undo->size() == 1 ? "" : "s", " restored)"));
      }
      return st;
    }
  }
  return absl::OkStatus();
}

void ContainerCgroup::Restore(const std::vector<CgroupWrite>& undo) {
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    Status st = WriteCgroupFile(dir_.get(), it->file, it->value, path_);
    if (!st.ok()) {
      log::Error("cgroups: cannot restore a previous value")
          .Kv("cgroup", path_)
          .Kv("file", it->file)
          .Kv("error", st.ToString());
    }
  }
}

StatusOr<UniqueFd> ContainerCgroup::BuildDeviceProgram(const std::vector<DeviceRule>& rules) {
  ASSIGN_OR_RETURN(std::vector<struct bpf_insn> insns, CompileDeviceFilter(rules));
  return LoadDeviceProgram(insns);
}

Status ContainerCgroup::Apply(const CgroupResources& r, const std::vector<DeviceRule>& rules) {
  std::lock_guard<std::mutex> lk(mu_);
  LogIgnored(path_, r);
  ASSIGN_OR_RETURN(std::vector<CgroupWrite> writes, CgroupWrites(r));
  RETURN_IF_ERROR(WriteAll(writes, nullptr));
  ASSIGN_OR_RETURN(UniqueFd prog, BuildDeviceProgram(rules));
  RETURN_IF_ERROR(AttachDeviceProgram(dir_.get(), prog.get()));
  device_prog_ = std::move(prog);
  device_rules_ = rules;
  log::Debug("cgroups: container cgroup configured")
      .Kv("cgroup", path_)
      .Kv("files", static_cast<uint64_t>(writes.size()))
      .Kv("device_rules", static_cast<uint64_t>(rules.size()));
  return absl::OkStatus();
}

Status ContainerCgroup::Update(const CgroupResources& req) {
  std::lock_guard<std::mutex> lk(mu_);
  LogIgnored(path_, req);
  CgroupResources r = req;
  std::string cpu_max;
  if (r.cpu_quota || r.cpu_period) {
    ASSIGN_OR_RETURN(cpu_max, ReadCgroupFile(dir_.get(), "cpu.max", path_));
    cpu_max = TrimNewline(cpu_max);
  }
  if (r.memory_swap && *r.memory_swap > 0 && !r.memory_limit) {
    // swap is memory+swap: against the limit in force.
    ASSIGN_OR_RETURN(std::string cur, ReadCgroupFile(dir_.get(), "memory.max", path_));
    std::optional<uint64_t> v = ParseLimitValue(cur);
    if (v && *v != UINT64_MAX) r.memory_limit = static_cast<int64_t>(*v);
  }
  ASSIGN_OR_RETURN(std::vector<CgroupWrite> writes, CgroupWrites(r, cpu_max));
  std::vector<CgroupWrite> undo;
  RETURN_IF_ERROR(WriteAll(writes, &undo));
  if (r.devices) {
    std::vector<DeviceRule> rules = device_rules_;
    // Rules before one that matches everything can never decide anything again.
    for (const DeviceRule& d : *r.devices) {
      if (d.type == 'a' && d.major < 0 && d.minor < 0 && d.access == kDevAccessAll) rules.clear();
      rules.push_back(d);
    }
    StatusOr<UniqueFd> prog = BuildDeviceProgram(rules);
    Status st = prog.ok() ? AttachDeviceProgram(dir_.get(), prog->get(), device_prog_.get())
                          : prog.status();
    if (!st.ok()) {
      Restore(undo);
      return Annotate(st, "device rules not changed, earlier values restored");
    }
    device_prog_ = std::move(*prog);
    device_rules_ = std::move(rules);
  }
  log::Line line(log::Level::kInfo, "cgroups: container cgroup updated");
  line.Kv("cgroup", path_).Kv("files", static_cast<uint64_t>(writes.size()));
  if (r.devices) {
    line.Kv("device_rules", static_cast<uint64_t>(device_rules_.size()));
    // Replaced in place: still exactly one program of ours on the cgroup.
    if (StatusOr<std::vector<uint32_t>> ids = AttachedDevicePrograms(dir_.get()); ids.ok())
      line.Kv("device_programs", static_cast<uint64_t>(ids->size()));
  }
  return absl::OkStatus();
}

Status ContainerCgroup::Freeze(CallContext& ctx, bool frozen, std::chrono::milliseconds most) {
  UniqueFd ev(openat(dir_.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
  if (!ev) return ErrnoError(errno, "open ", path_, "/cgroup.events");
  RETURN_IF_ERROR(WriteCgroupFile(dir_.get(), "cgroup.freeze", frozen ? "1" : "0", path_));
  const auto orig = ctx.deadline();
  const auto limit = CallContext::Clock::now() + most;
  if (limit < orig) ctx.set_deadline(limit);
  Status st = absl::OkStatus();
  for (;;) {
    StatusOr<uint64_t> v = EventsValue(ev.get(), "frozen");
    if (!v.ok()) {
      st = v.status();
      break;
    }
    if ((*v != 0) == frozen) break;
    // kernfs wakes POLLPRI readers when the file changes after their last read.
    st = ctx.WaitFd(ev.get(), POLLPRI);
    if (!st.ok()) break;
  }
  ctx.set_deadline(orig);
  if (!st.ok() && frozen) {
    (void)WriteCgroupFile(dir_.get(), "cgroup.freeze", "0", path_);
    return Annotate(st, StrCat("cgroup ", path_, " did not freeze (thawed again)"));
  }
  return st;
}

Status ContainerCgroup::Kill() { return WriteCgroupFile(dir_.get(), "cgroup.kill", "1", path_); }

StatusOr<bool> ContainerCgroup::Populated() {
  ASSIGN_OR_RETURN(std::string ev, ReadCgroupFile(dir_.get(), "cgroup.events", path_));
  return ParseFlatKeyed(ev)["populated"] != 0;
}

Status ContainerCgroup::Destroy(std::chrono::milliseconds most) {
  if (destroyed_.exchange(true)) return absl::OkStatus();
  (void)Kill();
  UniqueFd ev(openat(dir_.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
  const auto deadline = std::chrono::steady_clock::now() + most;
  while (ev) {
    StatusOr<uint64_t> populated = EventsValue(ev.get(), "populated");
    if (!populated.ok() || *populated == 0) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    struct pollfd p = {ev.get(), POLLPRI, 0};
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
  }
  ev.reset();
  {
    std::lock_guard<std::mutex> lk(mu_);
    device_prog_.reset();
  }
  std::lock_guard<std::mutex> tree(g_tree_mu);
  if (rmdir(path_.c_str()) < 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove cgroup ", path_);
  }
  // The levels above it that nothing uses any more, up to the containers' parent.
  std::string up = path_;
  for (;;) {
    up = up.substr(0, up.rfind('/'));
    if (up.size() <= parent_.size() || up.compare(0, parent_.size(), parent_) != 0) break;
    if (rmdir(up.c_str()) < 0) break;
  }
  return absl::OkStatus();
}

Status ContainerCgroup::Stats(grpc::CgroupStats* out) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::string> sizes;
  {
    int d = fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0);
    if (d < 0) return ErrnoError(errno, "dup ", path_);
    DIR* dir = fdopendir(d);
    if (!dir) {
      close(d);
      return ErrnoError(errno, "opendir ", path_);
    }
    while (struct dirent* e = readdir(dir)) {
      std::string_view n = e->d_name;
      if (n.rfind("hugetlb.", 0) == 0 && n.size() > 16 && n.substr(n.size() - 8) == ".current")
        sizes.emplace_back(n.substr(8, n.size() - 16));
    }
    closedir(dir);
  }
  std::sort(sizes.begin(), sizes.end());
  FillCgroupStats(
      [&](const std::string& f) -> std::optional<std::string> {
        StatusOr<std::string> s = ReadCgroupFile(dir_.get(), f, path_);
        if (!s.ok()) return std::nullopt;
        return std::move(*s);
      },
      sizes, out);
  return absl::OkStatus();
}

StatusOr<size_t> ContainerCgroup::DeviceProgramCount() {
  ASSIGN_OR_RETURN(std::vector<uint32_t> ids, AttachedDevicePrograms(dir_.get()));
  return ids.size();
}

std::vector<DeviceRule> ContainerCgroup::device_rules() const {
  std::lock_guard<std::mutex> lk(mu_);
  return device_rules_;
}

}  // namespace kata
