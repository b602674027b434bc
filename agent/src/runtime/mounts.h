// One mount of a spec, from its options to the kernel.
//
//   ASSIGN_OR_RETURN(MountOptions o, ParseMountOptions({"rbind", "ro", "nosuid"}));  // pure
//   RETURN_IF_ERROR(MountAt(m, o, target_fd));  // target_fd: resolved inside the rootfs
//
// Options follow the OCI runtime spec (and mount(8)): flags (ro, nosuid, nodev, noexec,
// sync, noatime, ...) and their negations, bind/rbind, propagation (private, rslave, ...),
// recursive attributes (rro, rnosuid, ... applied with mount_setattr(AT_RECURSIVE)); any
// other option is filesystem data ("mode=755", "size=65536k", "newinstance").
//
// Every mount is made with the file-descriptor mount API and attached with move_mount()
// onto the target fd, which is the exact directory or file that was resolved inside the
// rootfs: a bind is cloned with open_tree(), another filesystem is created with
// fsopen()/fsconfig()/fsmount() in the set-up process's namespaces (proc of its pid
// namespace, mqueue of its ipc namespace, ...). Attributes are set while the mount is
// still detached, so a read-only mount is never writable, not even for a moment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/spec.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct MountOptions {
  unsigned long flags = 0;        // MS_* to pass to mount(2) (MS_BIND, MS_REC, MS_RDONLY, ...)
  unsigned long clear = 0;        // MS_* flags explicitly negated ("rw", "suid", "dev", ...)
  unsigned long propagation = 0;  // MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE, with MS_REC
  uint64_t rec_attr_set = 0;      // MOUNT_ATTR_* applied recursively ("rro", "rnosuid", ...)
  uint64_t rec_attr_clr = 0;
  std::string data;  // filesystem options, comma-separated

  bool bind() const;
};

StatusOr<MountOptions> ParseMountOptions(const std::vector<std::string>& options);

// Parses an OCI propagation name ("rslave", "private", ...) into MS_* flags.
StatusOr<unsigned long> ParsePropagation(std::string_view name);

// MOUNT_ATTR_* equivalents of the per-mount MS_* flags in `flags` (ro, nosuid, nodev,
// noexec, atime modes, nodiratime).
uint64_t MountAttrsOf(unsigned long flags);

// Mounts m (parsed as o) onto target_fd (an O_PATH fd resolved inside the rootfs).
// sysfs that the kernel refuses (a user namespace without its own network namespace)
// becomes a recursive bind of /sys, as runc does.
Status MountAt(const MountSpec& m, const MountOptions& o, int target_fd);

// A detached mount made from a filesystem type ("tmpfs", "proc", ...), with per-mount
// attributes (MOUNT_ATTR_*). Returns the mount fd for move_mount().
StatusOr<UniqueFd> MakeFsMount(std::string_view type, std::string_view source,
                               std::string_view data, unsigned long sb_flags, uint64_t attrs);

// A detached clone of the mount tree at path (recursive or not).
StatusOr<UniqueFd> CloneTree(int dirfd, std::string_view path, bool recursive);

// Attaches a detached mount onto target_fd.
Status AttachAt(int mount_fd, int target_fd, std::string_view shown);

// mount_setattr(2) on the mount at fd (AT_EMPTY_PATH): attributes and/or propagation.
Status SetMountAttr(int fd, uint64_t set, uint64_t clr, unsigned long propagation, bool recursive,
                    std::string_view shown);

}  // namespace kata
