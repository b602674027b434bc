// Paths inside a container's rootfs.
//
// Every mount destination, device and masked path of a spec names a place inside the
// rootfs, and the rootfs is the container's to shape: any component may be a symlink
// pointing anywhere ("/evil -> /etc"). So nothing is ever opened by a joined string.
// Paths are resolved with openat2(RESOLVE_IN_ROOT): the kernel treats the rootfs fd as
// "/" and no symlink or ".." can leave it. Missing components are created one by one,
// each opened O_NOFOLLOW from its parent, and the result is re-opened with openat2 again.
// A mount is then made onto the resolved fd (/proc/self/fd/N or move_mount), never
// onto a path string the container could have changed meanwhile.
//
//   ASSIGN_OR_RETURN(UniqueFd dst, MkdirAllInRoot(rootfs_fd, "/dev/pts"));
//   ASSIGN_OR_RETURN(UniqueFd f, OpenInRoot(rootfs_fd, "/etc/hostname", O_PATH));
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

// Lexically cleans an absolute path: collapses "//", drops ".", resolves ".." as a
// chroot would ("/.." is "/"). Returns nullopt for a relative path, or if ".." would go
// above "/" (escaping) when strict is set.
std::optional<std::string> CleanAbsPath(std::string_view path, bool strict = true);

// The components of a clean absolute path ("/a/b" -> {"a", "b"}).
std::vector<std::string> PathComponents(std::string_view clean_path);

// openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS). O_CLOEXEC is
// always added. ENOENT keeps its code (NOT_FOUND) so callers can skip missing paths.
StatusOr<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags, mode_t mode = 0);

// Resolves path inside root, creating missing directories (mode 0755) on the way;
// symlinks met on the way are followed inside root. With last_is_file, the final
// component is created as an empty regular file when missing (a bind mount of a file
// needs a file to cover). Returns an O_PATH fd of the result.
StatusOr<UniqueFd> MkdirAllInRoot(int root_fd, std::string_view path, bool last_is_file = false);

}  // namespace kata
