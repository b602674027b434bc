#include "util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kata {

StatusOr<std::string> ReadFileString(const std::string& path, size_t max_bytes) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoErrorCode(errno == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kInternal,
                                 errno, "open ", path);
  std::string out;
  char buf[4096];
  while (out.size() < max_bytes) {
    ssize_t n = read(fd.get(), buf, std::min(sizeof buf, max_bytes - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read ", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteAll(int fd, std::string_view buf) {
  while (!buf.empty()) {
    ssize_t n = write(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "write");
    buf.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

Status WriteFileString(const std::string& path, std::string_view content, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return ErrnoError(errno, "open ", path);
  Status st = WriteAll(fd.get(), content);
  if (!st.ok()) return Annotate(st, path);
  return absl::OkStatus();
}

Status MkdirAll(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::OkStatus();
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    if (!cur.empty() && mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir ", cur);
    }
    i = j + 1;
  }
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return ErrnoError(errno, "stat ", path);
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(StrCat(path, " is not a directory"));
  return absl::OkStatus();
}

StatusOr<std::string> ReadUpTo(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, out.data() + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "read");
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

}  // namespace kata
