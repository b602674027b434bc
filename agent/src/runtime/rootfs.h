// The container's root filesystem: the mount plan (pure), then the steps that apply it in
// the set-up process, inside the container's new mount namespace.
//
//   ASSIGN_OR_RETURN(auto plan, PlanMounts(spec));           // pure, unit-tested
//   ASSIGN_OR_RETURN(UniqueFd root, PrepareRootfs(spec));    // propagation, self-bind
//   RETURN_IF_ERROR(MountAll(root.get(), plan));             // each target resolved in root
//   ... devices ...
//   RETURN_IF_ERROR(PivotRoot(root.get()));                  // the old root is unmounted
//   RETURN_IF_ERROR(ApplyReadonlyPaths(spec.readonly_paths));
//   RETURN_IF_ERROR(ApplyMaskedPaths(spec.masked_paths));
//   if (spec.root_readonly) RETURN_IF_ERROR(MakeRootReadonly());
#pragma once

#include <string>
#include <vector>

#include "runtime/mounts.h"
#include "runtime/spec.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct PlannedMount {
  MountSpec spec;
  MountOptions options;
  bool added = false;  // a default the spec lacked (/dev, /dev/pts, /dev/shm)
};

// The spec's mounts in order, plus a tmpfs on /dev, devpts on /dev/pts and a tmpfs on
// /dev/shm where the spec has none (devices are created in the container's own /dev,
// never in the image's directory). Fails with INVALID_ARGUMENT on bad options.
StatusOr<std::vector<PlannedMount>> PlanMounts(const ContainerSpec& spec);

// The mount point (from /proc/self/mountinfo text) of the mount that contains path:
// the longest mount point that is path or a parent of it. Pure.
std::string MountPointOf(std::string_view mountinfo, std::string_view path);

// Sets the propagation of the whole tree (the spec's rootfsPropagation, rslave by
// default, so nothing mounted here reaches the agent), bind-mounts the rootfs onto
// itself (pivot_root needs a mount point) and returns an fd of it.
StatusOr<UniqueFd> PrepareRootfs(const ContainerSpec& spec);

// Makes every planned mount, in order, each destination resolved inside root_fd.
Status MountAll(int root_fd, const std::vector<PlannedMount>& plan);

// pivot_root into root_fd; the old root is made a slave and detached, so nothing of the
// agent's filesystem stays reachable.
Status PivotRoot(int root_fd);

// After pivot_root: a read-only recursive bind over each path (missing ones skipped).
Status ApplyReadonlyPaths(const std::vector<std::string>& paths);
// After pivot_root: /dev/null over files, an empty read-only tmpfs over directories.
Status ApplyMaskedPaths(const std::vector<std::string>& paths);
// After pivot_root: "/" itself read-only (mounts below it keep their own mode).
Status MakeRootReadonly();
// After pivot_root: the spec's rootfsPropagation on the container's tree (before it,
// the rootfs had to sit under a private parent for pivot_root to accept it).
Status ApplyRootPropagation(const ContainerSpec& spec);

}  // namespace kata
