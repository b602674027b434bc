// Namespaces of the set-up process: the ones to join (by path) and the ones to create.
//
//   ASSIGN_OR_RETURN(auto join, OpenNamespacesToJoin(spec));  // all opened first: once a
//   RETURN_IF_ERROR(JoinNamespaces(join));                    // mount ns is joined, paths
//   RETURN_IF_ERROR(Unshare(NewNamespaceFlags(spec, false))); // mean something else
//
// Order matters and follows runc: the user namespace is joined (or created, then mapped
// by the agent) first, so the namespaces created after it are owned by it. A new pid
// namespace applies to the children of the caller only: the caller forks the container's
// init after Unshare().
#pragma once

#include <string>
#include <vector>

#include "runtime/spec.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct NsToJoin {
  NsType type;
  std::string path;
  UniqueFd fd;
};

StatusOr<std::vector<NsToJoin>> OpenNamespacesToJoin(const ContainerSpec& spec);

// setns() into each, the user namespace first.
Status JoinNamespaces(std::vector<NsToJoin>& ns);

// CLONE_NEW* flags of the namespaces the spec lists without a path; the user namespace
// only when with_user is set.
int NewNamespaceFlags(const ContainerSpec& spec, bool with_user);

// CLONE_NEW* of every namespace a container's processes live in, for an exec to join
// through the init's pidfd: mount and pid always (a container always gets them), the
// others the spec lists (created or joined by path), the user namespace only when listed
// (joining one's own user namespace is refused). Pure.
int ExecJoinFlags(const ContainerSpec& spec);

Status Unshare(int flags);

// The uid_map / gid_map text for mappings ("0 100000 65536\n..."). Pure.
std::string IdMapText(const std::vector<IdMapping>& maps);

// True if id (inside the namespace) is mapped.
bool IdMapped(const std::vector<IdMapping>& maps, uint32_t id);

Status SetHostname(const std::string& name);

}  // namespace kata
