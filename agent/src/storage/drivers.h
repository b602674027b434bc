// The storage drivers, one per file; handlers.cc maps Storage.driver names to them.
#pragma once

#include "storage/storage.h"

namespace kata {

// blk, virtio-blk, mmioblk, scsi: find the disk (block_devices.h), optionally make an ext4
// on it (driver option "create_filesystem"), mount it, apply fs_group.
StatusOr<MountedStorage> MountBlockStorage(DriverContext& dc, const StorageSpec& s);

// virtio-fs: the tag (default kataShared) mounted as virtiofs.
StatusOr<MountedStorage> MountVirtioFs(DriverContext& dc, const StorageSpec& s);
// 9p: the tag mounted as 9p over virtio (trans=virtio added when missing).
StatusOr<MountedStorage> Mount9p(DriverContext& dc, const StorageSpec& s);

// ephemeral: tmpfs (options: size=, mode=, fsgid=) or hugetlbfs (pagesize= and size=
// reserve the huge pages first).
StatusOr<MountedStorage> MountEphemeral(DriverContext& dc, const StorageSpec& s);
// UpdateEphemeralMounts: each ephemeral storage's options applied again (a mounted tmpfs
// is remounted with them, a missing one mounted); other drivers are INVALID_ARGUMENT.
Status UpdateEphemeralMounts(const std::vector<StorageSpec>& storages);

// local: a directory (mode=, fsgid=), nothing mounted.
StatusOr<MountedStorage> MakeLocalStorage(DriverContext& dc, const StorageSpec& s);

// overlayfs: lowerdir/upperdir/workdir from the options; "io.katacontainers.fs-opt.overlay-rw"
// adds an upper and work dir of the container's own; driver option
// "io.katacontainers.volume.overlayfs.create_directory=DIR" creates DIR first.
StatusOr<MountedStorage> MountOverlay(DriverContext& dc, const StorageSpec& s);

}  // namespace kata
