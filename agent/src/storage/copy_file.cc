#include "storage/copy_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "util/fs.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

std::vector<std::string> Split(std::string_view rel) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= rel.size()) {
    size_t s = rel.find('/', pos);
    if (s == std::string_view::npos) s = rel.size();
    out.emplace_back(rel.substr(pos, s - pos));
    pos = s + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& c, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i++) {
    if (i) out += '/';
    out += c[i];
  }
  return out;
}

// openat2 beneath root_fd. A path that would leave root is PERMISSION_DENIED; ENOENT is
// NOT_FOUND so callers can create what is missing.
StatusOr<UniqueFd> OpenBeneath(int root_fd, const std::string& rel, uint64_t flags,
                               const std::string& shown) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
  if (fd >= 0) return UniqueFd(fd);
  int err = errno;
  if (err == EXDEV || err == ELOOP) {
    return ErrnoErrorCode(absl::StatusCode::kPermissionDenied, err, "copy file ", shown,
                          ": a symlink leads out of the allowed tree");
  }
  if (err == ENOENT) return ErrnoErrorCode(absl::StatusCode::kNotFound, err, "open ", shown);
  if (err == ENOTDIR) {
    return ErrnoErrorCode(absl::StatusCode::kFailedPrecondition, err, "open ", shown);
  }
  return ErrnoError(err, "open ", shown);
}

Status RemoveAllAt(int dir_fd, const std::string& name) {
  if (unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return ErrnoError(errno, "remove ", name);
  int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open ", name);
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return ErrnoError(errno, "read ", name);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  Status st = absl::OkStatus();
  for (const auto& n : names) {
    st = RemoveAllAt(dirfd(d), n);
    if (!st.ok()) break;
  }
  closedir(d);
  RETURN_IF_ERROR(st);
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) < 0) return ErrnoError(errno, "remove ", name);
  return absl::OkStatus();
}

Status WriteAllAt(int fd, std::string_view data, int64_t offset) {
  while (!data.empty()) {
    ssize_t n = pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += n;
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::string> CopyFileRelativePath(std::string_view root, std::string_view path) {
  auto denied = [&](std::string_view why) {
    return absl::PermissionDeniedError(
        StrCat("copy file ", path, ": ", why, " (only paths below ", root, " are allowed)"));
  };
  if (path.find('\0') != std::string_view::npos) return denied("contains a NUL byte");
  if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 ||
      path[root.size()] != '/') {
    return denied("outside the allowed tree");
  }
  std::string_view rel = path.substr(root.size() + 1);
  for (const std::string& c : Split(rel)) {
    if (c.empty()) return denied("empty path component");
    if (c == "." || c == "..") return denied("'.' or '..' component");
  }
  return std::string(rel);
}

Status CopyFileChunkTo(const std::string& root, const CopyFileChunk& c) {
  ASSIGN_OR_RETURN(std::string rel, CopyFileRelativePath(root, c.path));
  if (c.offset < 0 || c.file_size < 0 ||
      c.offset > c.file_size - static_cast<int64_t>(c.data.size())) {
    return absl::InvalidArgumentError(StrCat("copy file ", c.path, ": offset ", c.offset, " + ",
                                             c.data.size(), " bytes exceeds file_size ",
                                             c.file_size));
  }
  const mode_t type = c.file_mode & S_IFMT;
  if (type != 0 && type != S_IFREG && type != S_IFDIR && type != S_IFLNK) {
    return absl::InvalidArgumentError(StrCat("copy file ", c.path, ": file_mode ", c.file_mode,
                                             " is not a file, directory or symlink"));
  }
  RETURN_IF_ERROR(MkdirAll(root, 0755));
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return ErrnoError(errno, "open ", root);

  // Parents, each resolved from the root again (a symlink among them is checked against
  // the root, not against its own directory).
  std::vector<std::string> comps = Split(rel);
  const std::string name = comps.back();
  for (size_t i = 1; i < comps.size(); i++) {
    const std::string prefix = Join(comps, i);
    StatusOr<UniqueFd> d = OpenBeneath(root_fd.get(), prefix, O_PATH | O_DIRECTORY, c.path);
    if (d.ok()) continue;
    if (d.status().code() != absl::StatusCode::kNotFound) return d.status();
    UniqueFd parent;
    if (i == 1) {
      parent.reset(fcntl(root_fd.get(), F_DUPFD_CLOEXEC, 0));
    } else {
      ASSIGN_OR_RETURN(
          parent, OpenBeneath(root_fd.get(), Join(comps, i - 1), O_PATH | O_DIRECTORY, c.path));
    }
    if (mkdirat(parent.get(), comps[i - 1].c_str(), c.dir_mode & 0777) < 0 && errno != EEXIST)
      return ErrnoError(errno, "mkdir ", root, "/", prefix);
  }
  UniqueFd parent;
  if (comps.size() == 1) {
    parent.reset(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent) return ErrnoError(errno, "open ", root);
  } else {
    ASSIGN_OR_RETURN(parent, OpenBeneath(root_fd.get(), Join(comps, comps.size() - 1),
                                         O_RDONLY | O_DIRECTORY, c.path));
    if (fchown(parent.get(), static_cast<uid_t>(c.uid), static_cast<gid_t>(c.gid)) < 0)
      return ErrnoError(errno, "chown the parent of ", c.path);
  }
  const uid_t uid = static_cast<uid_t>(c.uid);
  const gid_t gid = static_cast<gid_t>(c.gid);

  if (type == S_IFDIR) {
    // An existing directory is kept (upstream's compatibility rule); anything else goes.
    if (unlinkat(parent.get(), name.c_str(), 0) < 0 && errno != ENOENT && errno != EISDIR)
      return ErrnoError(errno, "remove ", c.path);
    if (mkdirat(parent.get(), name.c_str(), c.file_mode & 0777) < 0 && errno != EEXIST)
      return ErrnoError(errno, "mkdir ", c.path);
    UniqueFd d(openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) return ErrnoError(errno, "open ", c.path);
    if (fchmod(d.get(), c.file_mode & 07777) < 0) return ErrnoError(errno, "chmod ", c.path);
    if (fchown(d.get(), uid, gid) < 0) return ErrnoError(errno, "chown ", c.path);
    return absl::OkStatus();
  }

  if (type == S_IFLNK) {
    RETURN_IF_ERROR(RemoveAllAt(parent.get(), name));
    const std::string target(c.data);
    if (symlinkat(target.c_str(), parent.get(), name.c_str()) < 0)
      return ErrnoError(errno, "symlink ", c.path);
    if (fchownat(parent.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
      return ErrnoError(errno, "chown ", c.path);
    return absl::OkStatus();
  }

  const std::string tmp = name + ".kata-copy";
  if (c.offset == 0) {
    // A directory in the way cannot be renamed over; a file or symlink is replaced
    // atomically by the rename at the end.
    struct stat st;
    if (fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      RETURN_IF_ERROR(RemoveAllAt(parent.get(), name));
    RETURN_IF_ERROR(RemoveAllAt(parent.get(), tmp));
  }
  int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (c.offset == 0 ? O_TRUNC : 0);
  UniqueFd f(openat(parent.get(), tmp.c_str(), flags, c.file_mode & 0777));
  if (!f) return ErrnoError(errno, "open ", c.path, ".kata-copy");
  RETURN_IF_ERROR(Annotate(WriteAllAt(f.get(), c.data, c.offset), StrCat("copy file ", c.path)));
  struct stat st;
  if (fstat(f.get(), &st) < 0) return ErrnoError(errno, "stat ", c.path);
  if (st.st_size != c.file_size) return absl::OkStatus();  // more chunks to come
  if (fchmod(f.get(), c.file_mode & 07777) < 0) return ErrnoError(errno, "chmod ", c.path);
  if (fchown(f.get(), uid, gid) < 0) return ErrnoError(errno, "chown ", c.path);
  if (renameat(parent.get(), tmp.c_str(), parent.get(), name.c_str()) < 0)
    return ErrnoError(errno, "rename into ", c.path);
  log::Debug("file copied").Kv("path", c.path).Kv("size", static_cast<int64_t>(c.file_size));
  return absl::OkStatus();
}

}  // namespace kata
