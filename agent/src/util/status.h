// Error handling for the whole agent: absl::Status / absl::StatusOr<T>.
//
// Functions that can fail return a Status that names the object concerned and,
// for system calls, the errno:
//
//   RETURN_IF_ERROR(MountOne(m));
//   ASSIGN_OR_RETURN(UniqueFd fd, OpenInRoot(rootfs, path));
//   return ErrnoError(errno, "mount ", src, " on ", dst);
//      -> "mount /dev/vdb on /run/x: ENOENT (No such file or directory)"
//
// Status codes use the gRPC numbering, so the RPC layer passes them through.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "util/strcat.h"

namespace kata {

using absl::Status;
using absl::StatusOr;

// "ENOENT (No such file or directory)"
std::string ErrnoText(int err);

// Builds an INTERNAL status "<what...>: <ERRNO> (<text>)" carrying the errno in its message.
template <typename... Args>
Status ErrnoError(int err, const Args&... what) {
  return absl::InternalError(StrCat(what..., ": ", ErrnoText(err)));
}

// Same, with a chosen code.
template <typename... Args>
Status ErrnoErrorCode(absl::StatusCode code, int err, const Args&... what) {
  return Status(code, StrCat(what..., ": ", ErrnoText(err)));
}

// Prefixes a status message with context, keeping its code.
Status Annotate(const Status& st, std::string_view context);

}  // namespace kata

#define KATA_CONCAT_INNER_(a, b) a##b
#define KATA_CONCAT_(a, b) KATA_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::absl::Status kata_st_ = (expr);         \
    if (!kata_st_.ok()) return kata_st_;      \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                           \
  if (!tmp.ok()) return tmp.status();           \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(KATA_CONCAT_(kata_sor_, __LINE__), lhs, rexpr)
