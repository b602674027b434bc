#include "runtime/signals.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "runtime/errors.h"
#include "util/fs.h"

namespace kata {

bool SignalHandledInStatus(std::string_view status, int sig) {
  if (sig < 1 || sig > 64) return false;
  const uint64_t bit = uint64_t{1} << (sig - 1);
  size_t i = 0;
  while (i < status.size()) {
    size_t j = status.find('\n', i);
    if (j == std::string_view::npos) j = status.size();
    std::string_view line = status.substr(i, j - i);
    i = j + 1;
    for (std::string_view key : {"SigBlk:", "SigIgn:", "SigCgt:"}) {
      if (line.substr(0, key.size()) != key) continue;
      std::string hex(line.substr(key.size()));
      uint64_t mask = strtoull(hex.c_str(), nullptr, 16);
      if (mask & bit) return true;
    }
  }
  return false;
}

bool SignalHandled(pid_t pid, int sig) {
  StatusOr<std::string> s = ReadFileString(StrCat("/proc/", pid, "/status"), 64 * 1024);
  return s.ok() && SignalHandledInStatus(*s, sig);
}

Status SendSignal(int pidfd, int sig, std::string_view what) {
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0 && errno != ESRCH) {
    return SysError(errno, "signal ", sig, " to ", what);
  }
  return absl::OkStatus();
}

}  // namespace kata
