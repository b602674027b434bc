#include "runtime/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "runtime/errors.h"

namespace kata {
namespace {

struct FlagOpt {
  const char* name;
  bool negate;  // the option clears the flag
  unsigned long flag;
};

constexpr FlagOpt kFlagOpts[] = {
    {"defaults", false, 0},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"symfollow", true, MS_NOSYMFOLLOW},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
    {"iversion", false, MS_I_VERSION},
    {"noiversion", true, MS_I_VERSION},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
};

struct PropOpt {
  const char* name;
  unsigned long flags;
};

constexpr PropOpt kPropOpts[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct AttrOpt {
  const char* name;
  uint64_t set, clr;
};

constexpr AttrOpt kRecAttrOpts[] = {
    {"rro", MOUNT_ATTR_RDONLY, 0},
    {"rrw", 0, MOUNT_ATTR_RDONLY},
    {"rnosuid", MOUNT_ATTR_NOSUID, 0},
    {"rsuid", 0, MOUNT_ATTR_NOSUID},
    {"rnodev", MOUNT_ATTR_NODEV, 0},
    {"rdev", 0, MOUNT_ATTR_NODEV},
    {"rnoexec", MOUNT_ATTR_NOEXEC, 0},
    {"rexec", 0, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", MOUNT_ATTR_NODIRATIME, 0},
    {"rdiratime", 0, MOUNT_ATTR_NODIRATIME},
    {"rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
    {"rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME},
    {"rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
    {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0},
    {"rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW},
};

// Options of runc's or mount(8)'s that make no sense here, refused by name rather than
// passed to the filesystem as data.
constexpr const char* kUnsupported[] = {"remount", "tmpcopyup", "idmap", "ridmap", "move", "rmove"};

// Superblock flags that the fs_context API takes as fsconfig flags.
struct SbFlag {
  unsigned long flag;
  const char* name;
};
constexpr SbFlag kSbFlags[] = {
    {MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"}, {MS_LAZYTIME, "lazytime"},
    {MS_MANDLOCK, "mand"},    {MS_SILENT, "silent"},
};

// The kernel explains fsconfig failures in messages read from the context fd.
std::string FsContextMessages(int fsfd) {
  std::string out;
  char buf[512];
  for (int i = 0; i < 8; i++) {
    ssize_t n = read(fsfd, buf, sizeof buf - 1);
    if (n <= 0) break;
    buf[n] = 0;
    if (!out.empty()) out += "; ";
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status FsConfigError(int err, int fsfd, std::string_view type, std::string_view what) {
  std::string msgs = FsContextMessages(fsfd);
  if (msgs.empty()) return SysError(err, type, ": ", what);
  return SysError(err, type, ": ", what, " (", msgs, ")");
}

}  // namespace

bool MountOptions::bind() const { return (flags & MS_BIND) != 0; }

StatusOr<unsigned long> ParsePropagation(std::string_view name) {
  for (const auto& p : kPropOpts) {
    if (name == p.name) return p.flags;
  }
  return absl::InvalidArgumentError(StrCat("unknown propagation \"", name, "\""));
}

StatusOr<MountOptions> ParseMountOptions(const std::vector<std::string>& options) {
  MountOptions o;
  for (const std::string& opt : options) {
    bool done = false;
    for (const auto& f : kFlagOpts) {
      if (opt == f.name) {
        if (f.negate) {
          o.flags &= ~f.flag;
          o.clear |= f.flag;
        } else {
          o.flags |= f.flag;
          o.clear &= ~f.flag;
        }
        done = true;
        break;
      }
    }
    if (done) continue;
    for (const auto& p : kPropOpts) {
      if (opt == p.name) {
        o.propagation = p.flags;
        done = true;
        break;
      }
    }
    if (done) continue;
    for (const auto& a : kRecAttrOpts) {
      if (opt == a.name) {
        o.rec_attr_set = (o.rec_attr_set & ~a.clr & ~a.set) | a.set;
        o.rec_attr_clr = (o.rec_attr_clr & ~a.set) | a.clr;
        done = true;
        break;
      }
    }
    if (done) continue;
    for (const char* u : kUnsupported) {
      if (opt == u)
        return absl::InvalidArgumentError(StrCat("mount option \"", opt, "\" is not supported"));
    }
    if (opt.empty()) continue;
    if (opt.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(StrCat("mount option \"", opt, "\" contains a comma"));
    }
    if (!o.data.empty()) o.data += ",";
    o.data += opt;
  }
  return o;
}

uint64_t MountAttrsOf(unsigned long flags) {
  uint64_t a = 0;
  if (flags & MS_RDONLY) a |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV) a |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  if (flags & MS_NODIRATIME) a |= MOUNT_ATTR_NODIRATIME;
  if (flags & MS_NOSYMFOLLOW) a |= MOUNT_ATTR_NOSYMFOLLOW;
  if (flags & MS_NOATIME) {
    a |= MOUNT_ATTR_NOATIME;
  } else if (flags & MS_STRICTATIME) {
    a |= MOUNT_ATTR_STRICTATIME;
  }
  return a;
}

StatusOr<UniqueFd> MakeFsMount(std::string_view type, std::string_view source,
                               std::string_view data, unsigned long sb_flags, uint64_t attrs) {
  std::string t(type);
  UniqueFd fs(fsopen(t.c_str(), FSOPEN_CLOEXEC));
  if (!fs) return SysError(errno, "fsopen ", t);
  std::string src(source.empty() ? type : source);
  if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", src.c_str(), 0) < 0) {
    return FsConfigError(errno, fs.get(), t, StrCat("source ", src));
  }
  size_t i = 0;
  while (i < data.size()) {
    size_t j = data.find(',', i);
    if (j == std::string_view::npos) j = data.size();
    std::string opt(data.substr(i, j - i));
    i = j + 1;
    if (opt.empty()) continue;
    size_t eq = opt.find('=');
    int r;
    if (eq == std::string::npos) {
      r = fsconfig(fs.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0);
    } else {
      std::string key = opt.substr(0, eq), val = opt.substr(eq + 1);
      r = fsconfig(fs.get(), FSCONFIG_SET_STRING, key.c_str(), val.c_str(), 0);
    }
    if (r < 0) return FsConfigError(errno, fs.get(), t, StrCat("option ", opt));
  }
  for (const auto& f : kSbFlags) {
    if ((sb_flags & f.flag) && fsconfig(fs.get(), FSCONFIG_SET_FLAG, f.name, nullptr, 0) < 0) {
      return FsConfigError(errno, fs.get(), t, StrCat("option ", f.name));
    }
  }
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    return FsConfigError(errno, fs.get(), t, "create");
  }
  UniqueFd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, static_cast<unsigned int>(attrs)));
  if (!mnt) return FsConfigError(errno, fs.get(), t, "fsmount");
  return mnt;
}

StatusOr<UniqueFd> CloneTree(int dirfd, std::string_view path, bool recursive) {
  std::string p(path);
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  if (p.empty()) flags |= AT_EMPTY_PATH;
  UniqueFd t(open_tree(dirfd, p.c_str(), flags));
  if (!t) return SysError(errno, "open_tree ", p.empty() ? std::string("(fd)") : p);
  return t;
}

Status AttachAt(int mount_fd, int target_fd, std::string_view shown) {
  if (move_mount(mount_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
      0) {
    return SysError(errno, "move_mount onto ", shown);
  }
  return absl::OkStatus();
}

Status SetMountAttr(int fd, uint64_t set, uint64_t clr, unsigned long propagation, bool recursive,
                    std::string_view shown) {
  if (!set && !clr && !propagation) return absl::OkStatus();
  struct mount_attr attr = {};
  attr.attr_set = set;
  attr.attr_clr = clr;
  attr.propagation = propagation & (MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE);
  unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (mount_setattr(fd, "", flags, &attr, sizeof attr) < 0)
    return SysError(errno, "mount_setattr ", shown);
  return absl::OkStatus();
}

Status MountAt(const MountSpec& m, const MountOptions& o, int target_fd) {
  const std::string& dst = m.destination;
  UniqueFd mnt;
  const bool bind = o.bind() || m.type == "bind" || m.type == "rbind";
  const bool rec_bind = (o.flags & MS_REC) || m.type == "rbind";
  // Per-mount attributes from the plain options; an explicit negation clears.
  uint64_t set = MountAttrsOf(o.flags), clr = MountAttrsOf(o.clear);
  if (set & (MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME) || (o.flags & MS_RELATIME))
    clr |= MOUNT_ATTR__ATIME;
  if (o.clear & (MS_NOATIME | MS_STRICTATIME)) clr |= MOUNT_ATTR__ATIME;

  if (bind) {
    if (m.source.empty() || m.source[0] != '/') {
      return absl::InvalidArgumentError(
          StrCat("bind mount on ", dst, ": source \"", m.source, "\" is not absolute"));
    }
    auto t = CloneTree(AT_FDCWD, m.source, rec_bind);
    if (!t.ok()) return Annotate(t.status(), StrCat("bind ", m.source, " on ", dst));
    mnt = std::move(*t);
    RETURN_IF_ERROR(
        SetMountAttr(mnt.get(), set, clr, 0, false, StrCat("bind ", m.source, " on ", dst)));
  } else {
    std::string type = m.type;
    std::string data = o.data;
    if (type == "cgroup") {
      // The guest runs cgroup v2 only: a v1 "cgroup" mount (its data names v1
      // controllers) becomes the unified hierarchy, as runc does on a v2 host.
      type = "cgroup2";
      data.clear();
    }
    if (type.empty())
      return absl::InvalidArgumentError(StrCat("mount on ", dst, ": no filesystem type"));
    auto made = MakeFsMount(type, m.source, data, o.flags, set);
    if (!made.ok() && type == "sysfs" && ErrnoOf(made.status()) == EPERM) {
      // A user namespace without its own network namespace may not mount sysfs.
      MountSpec b = m;
      b.source = "/sys";
      b.type = "bind";
      MountOptions bo = o;
      bo.flags |= MS_BIND | MS_REC;
      return MountAt(b, bo, target_fd);
    }
    if (!made.ok()) return Annotate(made.status(), StrCat("mount ", type, " on ", dst));
    mnt = std::move(*made);
  }
  RETURN_IF_ERROR(SetMountAttr(mnt.get(), o.rec_attr_set, o.rec_attr_clr, 0, true, dst));
  RETURN_IF_ERROR(AttachAt(mnt.get(), target_fd, dst));
  // Propagation of an attached mount (mnt now refers to it).
  if (o.propagation) {
    RETURN_IF_ERROR(
        SetMountAttr(mnt.get(), 0, 0, o.propagation, (o.propagation & MS_REC) != 0, dst));
  }
  return absl::OkStatus();
}

}  // namespace kata
