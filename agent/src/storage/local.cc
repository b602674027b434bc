// Local volumes: a directory of the sandbox (an emptyDir kept in the guest), shared by the
// containers that name it. Nothing is mounted; the directory lives as long as the sandbox.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "storage/drivers.h"
#include "util/fs.h"

namespace kata {

StatusOr<MountedStorage> MakeLocalStorage(DriverContext&, const StorageSpec& s) {
  RETURN_IF_ERROR(MkdirAll(s.mount_point, 0750));
  bool fsgid = false;
  if (std::optional<std::string> v = OptionValue(s.options, "fsgid")) {
    char* end = nullptr;
    unsigned long gid = strtoul(v->c_str(), &end, 10);
    if (v->empty() || *end) {
      return absl::InvalidArgumentError(StrCat("storage ", s.mount_point, ": fsgid=", *v));
    }
    if (chown(s.mount_point.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) < 0)
      return ErrnoError(errno, "chown ", s.mount_point);
    fsgid = true;
  }
  if (std::optional<std::string> v = OptionValue(s.options, "mode")) {
    char* end = nullptr;
    unsigned long mode = strtoul(v->c_str(), &end, 8);
    if (v->empty() || *end || mode > 07777) {
      return absl::InvalidArgumentError(
          StrCat("storage ", s.mount_point, ": mode=", *v, " (octal)"));
    }
    if (fsgid) mode |= S_ISGID;
    if (chmod(s.mount_point.c_str(), static_cast<mode_t>(mode)) < 0)
      return ErrnoError(errno, "chmod ", s.mount_point);
  }
  MountedStorage m;
  m.mount_point = s.mount_point;
  return m;
}

}  // namespace kata
