// Small file helpers. All fds are opened close-on-exec.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

// Reads at most max_bytes of a file (procfs/sysfs files included).
StatusOr<std::string> ReadFileString(const std::string& path, size_t max_bytes = 1 << 20);
// Writes (truncating, creating with mode) the whole content in one write where possible:
// sysfs, procfs and cgroup files need the value in one write(2).
Status WriteFileString(const std::string& path, std::string_view content, mode_t mode = 0644);
// mkdir -p; existing directories are fine.
Status MkdirAll(const std::string& path, mode_t mode = 0755);
// Writes all of buf to fd, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view buf);
// Reads exactly n bytes unless EOF comes first; returns the bytes read.
StatusOr<std::string> ReadUpTo(int fd, size_t n);

}  // namespace kata
