// The parts every storage driver shares: validating a Storage, mounting it, fs_group,
// undoing it.
#include <fcntl.h>
#include <ftw.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/mounts.h"
#include "runtime/path.h"
#include "storage/mountinfo.h"
#include "storage/storage.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

constexpr mode_t kRwMask = 0660, kRoMask = 0440, kExecMask = 0110;

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

}  // namespace

std::vector<std::string> SplitMountOptions(const std::vector<std::string>& options) {
  std::vector<std::string> out;
  for (const std::string& o : options) {
    size_t pos = 0;
    while (pos <= o.size()) {
      size_t c = o.find(',', pos);
      if (c == std::string::npos) c = o.size();
      if (c > pos) out.push_back(o.substr(pos, c - pos));
      pos = c + 1;
    }
  }
  return out;
}

namespace {

// nftw has no user pointer: the walk's parameters, for the one walk running at a time.
struct FsGroupWalk {
  gid_t gid = 0;
  bool read_only = false;
  int first_error = 0;
  std::string error_path;
};
thread_local FsGroupWalk* g_walk = nullptr;

int FsGroupVisit(const char* path, const struct stat* st, int type, struct FTW*) {
  FsGroupWalk& w = *g_walk;
  if (type == FTW_SL || type == FTW_SLN) return 0;  // never through a symlink
  mode_t mask = w.read_only ? kRoMask : kRwMask;
  if (S_ISDIR(st->st_mode)) mask |= kExecMask | S_ISGID;
  if (lchown(path, static_cast<uid_t>(-1), w.gid) < 0 ||
      chmod(path, (st->st_mode & 07777) | mask) < 0) {
    if (!w.first_error) {
      w.first_error = errno;
      w.error_path = path;
    }
  }
  return 0;
}

}  // namespace

StatusOr<StorageSpec> ParseStorage(const grpc::Storage& s) {
  StorageSpec o;
  o.driver = s.driver();
  o.source = s.source();
  o.fstype = s.fstype();
  o.shared = s.shared();
  for (const auto& v : s.driver_options()) o.driver_options.push_back(v);
  for (const auto& v : s.options()) o.options.push_back(v);
  auto bad = [&](std::string_view field, std::string_view why) {
    return absl::InvalidArgumentError(StrCat("storage ", s.mount_point(), ": ", field, ": ", why));
  };
  if (o.driver.empty()) return bad("driver", "empty");
  for (const std::string* f : {&o.driver, &o.source, &o.fstype}) {
    if (HasNul(*f)) return bad("driver/source/fstype", "contains a NUL byte");
  }
  for (const auto& v : o.options) {
    if (HasNul(v)) return bad("options", "contains a NUL byte");
  }
  std::optional<std::string> clean = CleanAbsPath(s.mount_point());
  if (s.mount_point().empty() || HasNul(s.mount_point()) || !clean || *clean == "/" ||
      s.mount_point().find("/../") != std::string::npos ||
      (s.mount_point().size() >= 3 &&
       s.mount_point().compare(s.mount_point().size() - 3, 3, "/..") == 0)) {
    return bad("mount_point", "must be an absolute path other than / without '..'");
  }
  o.mount_point = *clean;
  if (s.has_fs_group()) {
    o.fs_group = FsGroupSpec{s.fs_group().group_id(),
                             s.fs_group().group_change_policy() == types::OnRootMismatch};
  }
  return o;
}

std::optional<std::string> OptionValue(const std::vector<std::string>& options,
                                       std::string_view key) {
  for (const std::string& o : SplitMountOptions(options)) {
    if (o.size() > key.size() && o.compare(0, key.size(), key) == 0 && o[key.size()] == '=')
      return o.substr(key.size() + 1);
  }
  return std::nullopt;
}

StatusOr<MountedStorage> MountStorage(const StorageSpec& s) {
  MountedStorage m;
  m.mount_point = s.mount_point;
  if (s.fstype.empty()) {
    return absl::InvalidArgumentError(StrCat("storage ", s.mount_point, ": fstype: empty"));
  }
  std::vector<std::string> opts;
  for (std::string& o : SplitMountOptions(s.options)) {
    if (o.rfind("io.katacontainers.", 0) == 0) continue;  // the runtime's notes
    opts.push_back(std::move(o));
  }
  StatusOr<MountOptions> mo = ParseMountOptions(opts);
  if (!mo.ok()) return Annotate(mo.status(), StrCat("storage ", s.mount_point, ": options"));
  if (mo->propagation || mo->rec_attr_set || mo->rec_attr_clr) {
    return absl::InvalidArgumentError(
        StrCat("storage ", s.mount_point, ": propagation and recursive options are not supported"));
  }

  // A share the guest mounted already (at boot, or an earlier request) is used as is.
  if (StatusOr<std::vector<MountEntry>> all = ReadMountInfo(); all.ok()) {
    const MountEntry* e = FindMount(*all, s.mount_point);
    if (e && e->fstype == s.fstype && !(mo->flags & MS_BIND)) {
      log::Info("storage already mounted: used as is")
          .Kv("mount_point", s.mount_point)
          .Kv("fstype", s.fstype);
      if (s.fs_group)
        RETURN_IF_ERROR(ApplyFsGroup(s.mount_point, *s.fs_group, (mo->flags & MS_RDONLY) != 0));
      return m;
    }
  }

  const bool bind = (mo->flags & MS_BIND) || s.fstype == "bind";
  struct stat src;
  if (bind && stat(s.source.c_str(), &src) == 0 && !S_ISDIR(src.st_mode)) {
    // A bind of a file needs a file to cover.
    std::string parent = s.mount_point.substr(0, s.mount_point.rfind('/'));
    RETURN_IF_ERROR(MkdirAll(parent.empty() ? "/" : parent, 0750));
    int fd = open(s.mount_point.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) return ErrnoError(errno, "create ", s.mount_point);
    close(fd);
  } else {
    struct stat st;
    m.remove_dir = stat(s.mount_point.c_str(), &st) != 0;  // we create it: we remove it
    RETURN_IF_ERROR(MkdirAll(s.mount_point, 0750));
  }
  unsigned long flags = mo->flags;
  const char* type = s.fstype.c_str();
  if (s.fstype == "bind") {
    flags |= MS_BIND;
    type = nullptr;
  }
  log::Info("mounting storage")
      .Kv("driver", s.driver)
      .Kv("source", s.source)
      .Kv("mount_point", s.mount_point)
      .Kv("fstype", s.fstype)
      .Kv("data", mo->data);
  const std::string source = s.source.empty() ? s.fstype : s.source;
  if (mount(source.c_str(), s.mount_point.c_str(), type, flags, mo->data.c_str()) < 0) {
    int err = errno;
    if (m.remove_dir) rmdir(s.mount_point.c_str());
    return ErrnoErrorCode(err == ENOENT || err == ENODEV || err == EINVAL || err == ENOTBLK
                              ? absl::StatusCode::kInvalidArgument
                              : absl::StatusCode::kInternal,
                          err, "mount ", source, " on ", s.mount_point, " (", s.fstype, ")");
  }
  m.mounted = true;
  // A bind ignores MS_RDONLY until it is remounted.
  if (bind && (flags & MS_RDONLY) &&
      mount(nullptr, s.mount_point.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) <
          0) {
    int err = errno;
    (void)UndoStorage(m);
    return ErrnoError(err, "remount ", s.mount_point, " read-only");
  }
  if (s.fs_group) {
    if (Status st = ApplyFsGroup(s.mount_point, *s.fs_group, (flags & MS_RDONLY) != 0); !st.ok()) {
      (void)UndoStorage(m);
      return st;
    }
  }
  return m;
}

Status ApplyFsGroup(const std::string& mount_point, const FsGroupSpec& g, bool read_only) {
  struct stat st;
  if (stat(mount_point.c_str(), &st) < 0) return ErrnoError(errno, "stat ", mount_point);
  if (g.on_root_mismatch && st.st_gid == g.gid) {
    mode_t mask = (read_only ? kRoMask : kRwMask) | kExecMask;
    if ((st.st_mode & mask) == mask && (st.st_mode & S_ISGID)) {
      log::Debug("fs_group: the volume root already matches").Kv("mount_point", mount_point);
      return absl::OkStatus();
    }
  }
  FsGroupWalk w;
  w.gid = g.gid;
  w.read_only = read_only;
  g_walk = &w;
  int rc = nftw(mount_point.c_str(), FsGroupVisit, 64, FTW_PHYS | FTW_MOUNT);
  g_walk = nullptr;
  if (rc < 0) return ErrnoError(errno, "fs_group: walk ", mount_point);
  if (w.first_error) return ErrnoError(w.first_error, "fs_group: chown/chmod ", w.error_path);
  log::Info("fs_group applied")
      .Kv("mount_point", mount_point)
      .Kv("gid", static_cast<uint64_t>(g.gid))
      .Kv("read_only", read_only);
  return absl::OkStatus();
}

Status UndoStorage(const MountedStorage& m) {
  if (m.mounted) {
    if (umount2(m.mount_point.c_str(), UMOUNT_NOFOLLOW) < 0) {
      int err = errno;
      if (err != EBUSY) {
        if (err != EINVAL && err != ENOENT) return ErrnoError(err, "unmount ", m.mount_point);
      } else {
        log::Warn("storage busy: detached, released when its last user goes")
            .Kv("mount_point", m.mount_point);
        if (umount2(m.mount_point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
          return ErrnoError(errno, "detach ", m.mount_point);
      }
    }
    log::Info("storage unmounted").Kv("mount_point", m.mount_point);
  }
  if (m.remove_dir && rmdir(m.mount_point.c_str()) < 0 && errno != ENOENT) {
    log::Debug("storage mount point kept")
        .Kv("mount_point", m.mount_point)
        .Kv("error", ErrnoText(errno));
  }
  return absl::OkStatus();
}

}  // namespace kata
