// CopyFile: the runtime writes files into the guest (resolv.conf, hostname, secrets,
// config maps without a shared fs), in chunks.
//
//   CopyFileChunk c{.path = "/run/kata-containers/shared/containers/x-hosts", ...};
//   RETURN_IF_ERROR(CopyFileChunkTo("/run/kata-containers", c));
//
// Rules:
//  - path must be absolute, below root, without "." or ".." components: otherwise
//    PERMISSION_DENIED. Every lookup is made with openat2(RESOLVE_BENEATH) from root, so a
//    symlink that leads out of root (absolute, or too many "..") is PERMISSION_DENIED too.
//  - Missing parent directories are created with dir_mode (& 0777); the immediate parent is
//    given uid:gid, as upstream does.
//  - file_mode's type bits choose what is made: a directory (kept if it exists; mode and
//    owner set), a symlink (target = data), or a regular file.
//  - A regular file is written at offset into "<name>.kata-copy" next to it (truncated when
//    offset is 0); when the temporary file reaches file_size it gets file_mode & 07777 and
//    uid:gid and is renamed over the target: readers see the old file or the whole new one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace kata {

struct CopyFileChunk {
  std::string path;
  int64_t file_size = 0;
  uint32_t file_mode = 0;
  uint32_t dir_mode = 0;
  int32_t uid = -1;  // -1: unchanged
  int32_t gid = -1;
  int64_t offset = 0;
  std::string_view data;
};

// The path below root, as components, or PERMISSION_DENIED. Pure.
StatusOr<std::string> CopyFileRelativePath(std::string_view root, std::string_view path);

Status CopyFileChunkTo(const std::string& root, const CopyFileChunk& c);

}  // namespace kata
