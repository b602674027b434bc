// Errors of the container runtime: a Status that also carries the errno as a number, so
// the set-up process can report "step, errno, message" back to the agent.
//
//   if (mount(...) < 0) return SysError(errno, "mount proc on ", dst);
//   ...
//   int e = ErrnoOf(st);  // EPERM, or 0 when st did not come from a system call
#pragma once

#include <string>

#include "absl/strings/cord.h"
#include "util/status.h"

namespace kata {

inline constexpr char kErrnoPayloadUrl[] = "kata.dev/errno";

template <typename... Args>
Status SysError(int err, const Args&... what) {
  Status st = ErrnoError(err, what...);
  st.SetPayload(kErrnoPayloadUrl, absl::Cord(std::to_string(err)));
  return st;
}

inline int ErrnoOf(const Status& st) {
  auto p = st.GetPayload(kErrnoPayloadUrl);
  if (!p) return 0;
  return std::atoi(std::string(*p).c_str());
}

}  // namespace kata
