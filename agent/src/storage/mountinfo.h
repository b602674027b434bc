// /proc/self/mountinfo, parsed (pure) and looked up.
//
//   ASSIGN_OR_RETURN(std::vector<MountEntry> all, ReadMountInfo());
//   const MountEntry* m = FindMount(all, "/run/kata-containers/shared/containers");
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata {

struct MountEntry {
  unsigned major = 0, minor = 0;  // st_dev of the mounted filesystem
  std::string root;               // the part of the filesystem mounted ("/" or a bind's subdir)
  std::string mount_point;        // octal escapes (\040 ...) decoded
  std::string fstype;
  std::string source;
};

// Lines that do not parse are skipped.
std::vector<MountEntry> ParseMountInfo(std::string_view text);
StatusOr<std::vector<MountEntry>> ReadMountInfo(const std::string& path = "/proc/self/mountinfo");

// The topmost mount at exactly mount_point (the last one listed), or nullptr.
const MountEntry* FindMount(const std::vector<MountEntry>& all, std::string_view mount_point);

}  // namespace kata
