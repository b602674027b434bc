#include "runtime/path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <deque>

#include "runtime/errors.h"

namespace kata {
namespace {

std::vector<std::string> SplitRaw(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& comps) {
  if (comps.empty()) return "/";
  std::string out;
  for (const auto& c : comps) {
    out.push_back('/');
    out.append(c);
  }
  return out;
}

}  // namespace

std::optional<std::string> CleanAbsPath(std::string_view path, bool strict) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::vector<std::string> out;
  for (auto& c : SplitRaw(path)) {
    if (c == "..") {
      if (out.empty()) {
        if (strict) return std::nullopt;
        continue;
      }
      out.pop_back();
    } else {
      out.push_back(std::move(c));
    }
  }
  return Join(out);
}

std::vector<std::string> PathComponents(std::string_view clean_path) {
  return SplitRaw(clean_path);
}

StatusOr<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags, mode_t mode) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string p = path.empty() ? std::string(1, '/') : std::string(path);
  for (;;) {
    long fd = syscall(SYS_openat2, root_fd, p.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || errno == EAGAIN) continue;  // EAGAIN: a concurrent rename; retry
    int e = errno;
    Status st = SysError(e, "open ", p, " in the rootfs");
    if (e == ENOENT) return Status(absl::StatusCode::kNotFound, st.message());
    return st;
  }
}

StatusOr<UniqueFd> MkdirAllInRoot(int root_fd, std::string_view path, bool last_is_file) {
  std::optional<std::string> clean = CleanAbsPath(path, /*strict=*/false);
  if (!clean)
    return absl::InvalidArgumentError(StrCat("path ", std::string(path), " is not absolute"));
  std::deque<std::string> todo;
  for (auto& c : SplitRaw(*clean)) todo.push_back(std::move(c));

  // The directories resolved so far, root excluded; names mirror fds for messages.
  std::vector<UniqueFd> fds;
  std::vector<std::string> names;
  auto cur = [&] { return fds.empty() ? root_fd : fds.back().get(); };
  int symlinks = 0, retries = 0;
  while (!todo.empty()) {
    std::string comp = std::move(todo.front());
    todo.pop_front();
    const bool last = todo.empty();
    if (comp == "..") {
      if (!fds.empty()) {
        fds.pop_back();
        names.pop_back();
      }
      continue;
    }
    names.push_back(comp);
    const std::string shown = Join(names);
    names.pop_back();

    struct stat st;
    if (fstatat(cur(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT) return SysError(errno, "stat ", shown, " in the rootfs");
      if (++retries > 100) return SysError(ELOOP, "create ", shown, " in the rootfs");
      if (last && last_is_file) {
        int fd =
            openat(cur(), comp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) return SysError(errno, "create ", shown, " in the rootfs");
        if (fd >= 0) close(fd);
      } else if (mkdirat(cur(), comp.c_str(), 0755) < 0 && errno != EEXIST) {
        return SysError(errno, "mkdir ", shown, " in the rootfs");
      }
      todo.push_front(comp);  // look again: now it exists (or someone else made it)
      continue;
    }
    if (S_ISLNK(st.st_mode)) {
      if (++symlinks > 40) return SysError(ELOOP, "resolve ", shown, " in the rootfs");
      char target[PATH_MAX];
      ssize_t n = readlinkat(cur(), comp.c_str(), target, sizeof target - 1);
      if (n < 0) return SysError(errno, "readlink ", shown, " in the rootfs");
      std::string_view t(target, static_cast<size_t>(n));
      std::vector<std::string> tc = SplitRaw(t);
      for (auto it = tc.rbegin(); it != tc.rend(); ++it) todo.push_front(*it);
      if (!t.empty() && t[0] == '/') {
        fds.clear();  // absolute: from the rootfs, never from the host's /
        names.clear();
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode) && !last)
      return SysError(ENOTDIR, "resolve ", shown, " in the rootfs");
    int fd = openat(cur(), comp.c_str(),
                    O_PATH | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
    if (fd < 0) {
      if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) {
        // Replaced between stat and open: resolve this component again.
        if (++retries > 100) return SysError(errno, "open ", shown, " in the rootfs");
        todo.push_front(comp);
        continue;
      }
      return SysError(errno, "open ", shown, " in the rootfs");
    }
    fds.emplace_back(fd);
    names.push_back(comp);
  }
  // The kernel's own resolution has the last word: what we return is inside the root.
  return OpenInRoot(root_fd, *clean, O_PATH);
}

}  // namespace kata
