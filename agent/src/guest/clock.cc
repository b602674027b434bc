#include "guest/clock.h"

#include <time.h>

#include "util/log.h"

namespace kata {

Status SetWallClock(int64_t sec, int64_t usec) {
  if (sec < 0) return absl::InvalidArgumentError(StrCat("Sec ", sec, " is before 1970"));
  if (usec < 0 || usec >= 1000000) {
    return absl::InvalidArgumentError(StrCat("Usec ", usec, " is not in [0, 1000000)"));
  }
  struct timespec ts = {static_cast<time_t>(sec), static_cast<long>(usec * 1000)};
  if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
    int e = errno;
    // EINVAL: beyond what the kernel's clock can hold (about year 2262).
    return ErrnoErrorCode(e == EINVAL  ? absl::StatusCode::kInvalidArgument
                          : e == EPERM ? absl::StatusCode::kPermissionDenied
                                       : absl::StatusCode::kInternal,
                          e, "clock_settime(CLOCK_REALTIME, ", sec, ".", usec, ")");
  }
  log::Info("guest clock set").Kv("sec", sec).Kv("usec", usec);
  return absl::OkStatus();
}

}  // namespace kata
