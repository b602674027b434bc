// A Storage of the agent API (CreateSandbox.storages, CreateContainer.storages) as a
// plain struct, validated once where it enters, and the drivers that make it real.
//
//   ASSIGN_OR_RETURN(StorageSpec s, ParseStorage(req.storages(0)));
//   const StorageDriver* d = FindStorageDriver(s.driver);   // nullptr: not handled
//   ASSIGN_OR_RETURN(MountedStorage m, (*d)(dctx, s));
//   ... on the last release: RETURN_IF_ERROR(UndoStorage(m));
//
// Drivers (one file each): blk/virtio-blk, mmioblk, scsi (block_storage.cc), virtio-fs and
// 9p (shared_fs.cc), ephemeral (ephemeral.cc), local (local.cc), overlayfs (overlay.cc).
// The mount itself, options and fs_group are common (mount_storage.cc).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent.pb.h"
#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

struct FsGroupSpec {
  gid_t gid = 0;
  bool on_root_mismatch = false;  // else: always
};

struct StorageSpec {
  std::string driver;
  std::vector<std::string> driver_options;
  std::string source;
  std::string fstype;
  std::vector<std::string> options;
  std::string mount_point;  // absolute and clean
  std::optional<FsGroupSpec> fs_group;
  bool shared = false;  // kept mounted when its last user goes (until DestroySandbox)
};

// INVALID_ARGUMENT naming the field: an empty driver, a mount point that is not an
// absolute clean path (no "..", not "/"), a NUL byte anywhere.
StatusOr<StorageSpec> ParseStorage(const grpc::Storage& s);

// What a driver left behind, for the last release to undo.
struct MountedStorage {
  std::string mount_point;
  bool mounted = false;     // mount_point is a mount of ours: unmount it
  bool remove_dir = false;  // remove mount_point (if empty) after unmounting
};

struct DriverContext {
  CallContext* ctx = nullptr;
  std::chrono::milliseconds hotplug_timeout{3000};
  std::string container_id;  // empty for sandbox storages
  std::string bundle_dir = "/run/kata-containers";
};

using StorageDriver = StatusOr<MountedStorage> (*)(DriverContext& dc, const StorageSpec& s);

// The driver for a Storage.driver name; nullptr if none. Drivers the agent knows but does
// not support (watchable-bind, ...) are answered by UnsupportedStorageDriver.
const StorageDriver* FindStorageDriver(std::string_view name);
// INVALID_ARGUMENT "unsupported: ..." for a driver name this agent refuses on purpose;
// OK when the name is not one of those.
Status UnsupportedStorageDriver(std::string_view name);

// The handled driver names (GetGuestDetails.storage_handlers), nullptr-terminated.
extern const char* const kStorageHandlers[];

// Unmounts (and removes the directory) as `m` says. An unmount that finds the mount busy
// detaches it (MNT_DETACH) and says so in the log: the mount is gone from the agent's
// view, the device is released when its last user is.
Status UndoStorage(const MountedStorage& m);

// ---- the parts drivers share (mount_storage.cc) ----

// Mounts s.source on s.mount_point as s.fstype with s.options (flags such as ro, nosuid
// and filesystem data; "io.katacontainers.*" options are the runtime's notes, not passed
// to the kernel), creating the mount point first. A mount point that already carries a
// mount of the same type is used as is (mounted=false: not ours to undo), as upstream
// does for a share the guest mounted at boot. Then fs_group, if the storage has one.
StatusOr<MountedStorage> MountStorage(const StorageSpec& s);

// fs_group: group ownership and group permission bits of the whole volume (upstream's
// set_ownership: g+rw, or g+r for "ro", setgid on directories; OnRootMismatch skips the
// walk when the root already has them). Symlinks are not followed; the walk stays on
// the volume's filesystem.
Status ApplyFsGroup(const std::string& mount_point, const FsGroupSpec& g, bool read_only);

// The runtime's option strings may hold several options ("trans=virtio,version=9p2000.L"):
// one option per element.
std::vector<std::string> SplitMountOptions(const std::vector<std::string>& options);

// "key=value" options as a map-like lookup; nullopt when absent.
std::optional<std::string> OptionValue(const std::vector<std::string>& options,
                                       std::string_view key);

}  // namespace kata
