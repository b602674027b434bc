#include "runtime/devices.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <set>

#include "runtime/errors.h"
#include "runtime/mounts.h"
#include "runtime/path.h"

namespace kata {
namespace {

std::string Dirname(const std::string& p) {
  size_t s = p.rfind('/');
  return s == 0 ? "/" : p.substr(0, s);
}

std::string Basename(const std::string& p) { return p.substr(p.rfind('/') + 1); }

mode_t TypeBits(char t) {
  switch (t) {
    case 'b':
      return S_IFBLK;
    case 'p':
      return S_IFIFO;
    default:
      return S_IFCHR;  // 'c' and 'u'
  }
}

Status CreateOne(int root_fd, const DeviceSpec& d, bool bind_from_host) {
  ASSIGN_OR_RETURN(UniqueFd dir, MkdirAllInRoot(root_fd, Dirname(d.path)));
  // An O_PATH fd of a directory works as the dirfd of the *at calls below.
  std::string name = Basename(d.path);
  if (unlinkat(dir.get(), name.c_str(), 0) < 0 && errno != ENOENT)
    return SysError(errno, "remove ", d.path);
  dev_t dev =
      d.type == 'p' ? 0 : makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
  if (!bind_from_host) {
    if (mknodat(dir.get(), name.c_str(), TypeBits(d.type) | (d.file_mode & 07777), dev) < 0) {
      if (errno != EPERM) return SysError(errno, "mknod ", d.path);
      bind_from_host = true;
    }
  }
  if (bind_from_host) {
    int f =
        openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0000);
    if (f < 0) return SysError(errno, "create ", d.path);
    close(f);
    ASSIGN_OR_RETURN(UniqueFd target, OpenInRoot(root_fd, d.path, O_PATH | O_NOFOLLOW));
    ASSIGN_OR_RETURN(UniqueFd tree, CloneTree(AT_FDCWD, d.path, false));
    return AttachAt(tree.get(), target.get(), d.path);
  }
  if (fchownat(dir.get(), name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return SysError(errno, "chown ", d.path);
  return absl::OkStatus();
}

}  // namespace

std::vector<DeviceSpec> DefaultDevices() {
  auto dev = [](const char* path, int64_t major, int64_t minor) {
    DeviceSpec d;
    d.path = path;
    d.type = 'c';
    d.major = major;
    d.minor = minor;
    d.file_mode = 0666;
    return d;
  };
  return {dev("/dev/null", 1, 3),   dev("/dev/zero", 1, 5),    dev("/dev/full", 1, 7),
          dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0)};
}

std::vector<DeviceSpec> DevicesToCreate(const ContainerSpec& spec) {
  std::set<std::string> given;
  for (const auto& d : spec.devices) given.insert(d.path);
  std::vector<DeviceSpec> out;
  for (auto& d : DefaultDevices()) {
    if (!given.count(d.path)) out.push_back(d);
  }
  for (const auto& d : spec.devices) out.push_back(d);
  return out;
}

Status CreateDevices(int root_fd, const std::vector<DeviceSpec>& devices, bool bind_from_host) {
  for (const auto& d : devices) RETURN_IF_ERROR(CreateOne(root_fd, d, bind_from_host));
  return absl::OkStatus();
}

Status CreateDevLinks(int root_fd) {
  ASSIGN_OR_RETURN(UniqueFd dev, MkdirAllInRoot(root_fd, "/dev"));
  const std::pair<const char*, const char*> kLinks[] = {
      {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
  };
  for (const auto& [name, target] : kLinks) {
    if (symlinkat(target, dev.get(), name) < 0 && errno != EEXIST) {
      return SysError(errno, "symlink /dev/", name, " -> ", target);
    }
  }
  return absl::OkStatus();
}

}  // namespace kata
