#include "runtime/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/errors.h"
#include "runtime/path.h"
#include "util/fs.h"

namespace kata {
namespace {

bool IsUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

MountSpec Default(const char* dst, const char* type, std::vector<std::string> opts) {
  MountSpec m;
  m.destination = dst;
  m.source = type;
  m.type = type;
  m.options = std::move(opts);
  return m;
}

// mountinfo escapes blanks and backslashes in paths as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; k++) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

StatusOr<std::vector<PlannedMount>> PlanMounts(const ContainerSpec& spec) {
  std::vector<PlannedMount> plan;
  bool has_dev = false, has_pts = false, has_shm = false;
  for (const auto& m : spec.mounts) {
    has_dev |= m.destination == "/dev";
    has_pts |= m.destination == "/dev/pts";
    has_shm |= m.destination == "/dev/shm";
  }
  std::vector<std::string> pts_opts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                       "mode=0620"};
  // gid 5 (tty) exists only if the user namespace maps it.
  if (!spec.NewNamespace(NsType::kUser)) pts_opts.push_back("gid=5");
  std::vector<PlannedMount> dev_defaults;
  if (!has_pts) dev_defaults.push_back({Default("/dev/pts", "devpts", pts_opts), {}, true});
  if (!has_shm) {
    dev_defaults.push_back(
        {Default("/dev/shm", "tmpfs", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
         {},
         true});
  }
  if (!has_dev) {
    plan.push_back(
        {Default("/dev", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}), {}, true});
    for (auto& d : dev_defaults) plan.push_back(d);
  }
  for (size_t i = 0; i < spec.mounts.size(); i++) {
    plan.push_back({spec.mounts[i], {}, false});
    if (spec.mounts[i].destination == "/dev") {
      for (auto& d : dev_defaults) plan.push_back(d);
    }
  }
  for (size_t i = 0; i < plan.size(); i++) {
    StatusOr<MountOptions> o = ParseMountOptions(plan[i].spec.options);
    if (!o.ok())
      return absl::InvalidArgumentError(
          StrCat("mount on ", plan[i].spec.destination, ": ", o.status().message()));
    plan[i].options = *o;
  }
  return plan;
}

std::string MountPointOf(std::string_view mountinfo, std::string_view path) {
  std::string best = "/";
  size_t i = 0;
  while (i < mountinfo.size()) {
    size_t j = mountinfo.find('\n', i);
    if (j == std::string_view::npos) j = mountinfo.size();
    std::string_view line = mountinfo.substr(i, j - i);
    i = j + 1;
    // id parent major:minor root mount-point ...: the fifth field.
    std::string_view field;
    size_t pos = 0;
    for (int f = 0; f < 5 && pos <= line.size(); f++) {
      size_t sp = line.find(' ', pos);
      if (sp == std::string_view::npos) sp = line.size();
      field = f == 4 ? line.substr(pos, sp - pos) : std::string_view();
      pos = sp + 1;
    }
    if (field.empty()) continue;
    std::string mp = Unescape(field);
    if (IsUnder(path, mp) && mp.size() >= best.size()) best = mp;
  }
  return best;
}

StatusOr<UniqueFd> PrepareRootfs(const ContainerSpec& spec) {
  unsigned long prop = spec.rootfs_propagation ? spec.rootfs_propagation : (MS_SLAVE | MS_REC);
  if (mount(nullptr, "/", nullptr, prop | MS_REC, nullptr) < 0)
    return SysError(errno, "set propagation of /");
  const std::string& root = spec.root_path;
  struct stat st;
  if (stat(root.c_str(), &st) < 0) return SysError(errno, "rootfs ", root);
  if (!S_ISDIR(st.st_mode)) return SysError(ENOTDIR, "rootfs ", root);
  // pivot_root refuses a new root whose parent mount is shared; with a shared
  // rootfsPropagation the parent is made private (only in this mount namespace).
  if (prop & MS_SHARED) {
    StatusOr<std::string> mi = ReadFileString("/proc/self/mountinfo", 8 << 20);
    if (!mi.ok()) return mi.status();
    std::string parent = MountPointOf(*mi, root);
    if (mount(nullptr, parent.c_str(), nullptr, MS_PRIVATE, nullptr) < 0) {
      return SysError(errno, "make ", parent, " private");
    }
  }
  if (mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
    return SysError(errno, "bind ", root, " onto itself");
  }
  // Opened after the bind, so the fd is the bind's root and mounts made through it land
  // on the new root, not under it.
  UniqueFd fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return SysError(errno, "open rootfs ", root);
  return fd;
}

Status MountAll(int root_fd, const std::vector<PlannedMount>& plan) {
  for (const PlannedMount& pm : plan) {
    const MountSpec& m = pm.spec;
    bool file_target = false;
    if (pm.options.bind() || m.type == "bind" || m.type == "rbind") {
      struct stat st;
      if (stat(m.source.c_str(), &st) < 0) return SysError(errno, "bind mount source ", m.source);
      file_target = !S_ISDIR(st.st_mode);
    }
    StatusOr<UniqueFd> target = MkdirAllInRoot(root_fd, m.destination, file_target);
    if (!target.ok()) return Annotate(target.status(), StrCat("mount target ", m.destination));
    RETURN_IF_ERROR(MountAt(m, pm.options, target->get()));
  }
  return absl::OkStatus();
}

Status PivotRoot(int root_fd) {
  UniqueFd old_root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!old_root) return SysError(errno, "open /");
  if (fchdir(root_fd) < 0) return SysError(errno, "chdir to the rootfs");
  // pivot_root(".", "."): the old root ends up stacked on the new one, at "."; it is
  // then detached from there, without needing a directory for it in the image.
  if (syscall(SYS_pivot_root, ".", ".") < 0) return SysError(errno, "pivot_root");
  if (fchdir(old_root.get()) < 0) return SysError(errno, "chdir to the old root");
  // Slave first: the detach must not propagate to the agent's mounts.
  if (mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0)
    return SysError(errno, "make the old root a slave");
  if (umount2(".", MNT_DETACH) < 0) return SysError(errno, "unmount the old root");
  if (chdir("/") < 0) return SysError(errno, "chdir /");
  return absl::OkStatus();
}

Status ApplyReadonlyPaths(const std::vector<std::string>& paths) {
  UniqueFd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return SysError(errno, "open /");
  for (const std::string& p : paths) {
    StatusOr<UniqueFd> fd = OpenInRoot(root.get(), p, O_PATH);
    if (fd.status().code() == absl::StatusCode::kNotFound) continue;
    if (!fd.ok()) return fd.status();
    ASSIGN_OR_RETURN(UniqueFd tree, CloneTree(fd->get(), "", /*recursive=*/true));
    RETURN_IF_ERROR(SetMountAttr(tree.get(), MOUNT_ATTR_RDONLY, 0, 0, /*recursive=*/true, p));
    RETURN_IF_ERROR(AttachAt(tree.get(), fd->get(), p));
  }
  return absl::OkStatus();
}

Status ApplyMaskedPaths(const std::vector<std::string>& paths) {
  UniqueFd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return SysError(errno, "open /");
  for (const std::string& p : paths) {
    StatusOr<UniqueFd> fd = OpenInRoot(root.get(), p, O_PATH);
    if (fd.status().code() == absl::StatusCode::kNotFound) continue;
    if (!fd.ok()) return fd.status();
    struct stat st;
    if (fstat(fd->get(), &st) < 0) return SysError(errno, "stat ", p);
    UniqueFd cover;
    if (S_ISDIR(st.st_mode)) {
      ASSIGN_OR_RETURN(cover, MakeFsMount("tmpfs", "tmpfs", "size=0,mode=0555", 0,
                                          MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                              MOUNT_ATTR_NOEXEC));
    } else {
      ASSIGN_OR_RETURN(cover, CloneTree(AT_FDCWD, "/dev/null", false));
    }
    RETURN_IF_ERROR(AttachAt(cover.get(), fd->get(), p));
  }
  return absl::OkStatus();
}

Status ApplyRootPropagation(const ContainerSpec& spec) {
  if (!spec.rootfs_propagation) return absl::OkStatus();
  if (mount(nullptr, "/", nullptr, spec.rootfs_propagation, nullptr) < 0) {
    return SysError(errno, "set propagation of the container's /");
  }
  return absl::OkStatus();
}

Status MakeRootReadonly() {
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (mount_setattr(AT_FDCWD, "/", 0, &attr, sizeof attr) < 0)
    return SysError(errno, "make / read-only");
  return absl::OkStatus();
}

}  // namespace kata
