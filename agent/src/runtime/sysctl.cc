#include "runtime/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include "runtime/errors.h"
#include "util/unique_fd.h"

namespace kata {

std::string SysctlPath(std::string_view key) {
  std::string out = "/proc/sys/";
  for (char c : key) out.push_back(c == '.' ? '/' : c);
  return out;
}

Status WriteSysctls(const std::map<std::string, std::string>& sysctls) {
  for (const auto& [k, v] : sysctls) {
    std::string path = SysctlPath(k);
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return SysError(errno, "sysctl ", k, ": open ", path);
    ssize_t n = write(fd.get(), v.data(), v.size());
    if (n < 0) return SysError(errno, "sysctl ", k, "=", v);
    if (static_cast<size_t>(n) != v.size())
      return SysError(EIO, "sysctl ", k, "=", v, ": short write");
  }
  return absl::OkStatus();
}

}  // namespace kata
