#include "runtime/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "runtime/errors.h"

namespace kata {

StatusOr<std::vector<NsToJoin>> OpenNamespacesToJoin(const ContainerSpec& spec) {
  std::vector<NsToJoin> out;
  // The user namespace first, then the order of the spec.
  for (int pass = 0; pass < 2; pass++) {
    for (const auto& n : spec.namespaces) {
      if (n.path.empty() || (pass == 0) != (n.type == NsType::kUser)) continue;
      UniqueFd fd(open(n.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return SysError(errno, "open ", NsTypeName(n.type), " namespace ", n.path);
      out.push_back({n.type, n.path, std::move(fd)});
    }
  }
  return out;
}

Status JoinNamespaces(std::vector<NsToJoin>& ns) {
  for (auto& n : ns) {
    if (setns(n.fd.get(), NsCloneFlag(n.type)) < 0) {
      return SysError(errno, "join ", NsTypeName(n.type), " namespace ", n.path);
    }
    n.fd.reset();
  }
  return absl::OkStatus();
}

int NewNamespaceFlags(const ContainerSpec& spec, bool with_user) {
  int flags = 0;
  for (const auto& n : spec.namespaces) {
    if (!n.path.empty()) continue;
    if (n.type == NsType::kUser && !with_user) continue;
    flags |= NsCloneFlag(n.type);
  }
  return flags;
}

int ExecJoinFlags(const ContainerSpec& spec) {
  int flags = CLONE_NEWNS | CLONE_NEWPID;
  for (const auto& n : spec.namespaces) flags |= NsCloneFlag(n.type);
  return flags;
}

Status Unshare(int flags) {
  if (flags && unshare(flags) < 0) {
    std::string names;
    for (NsType t : {NsType::kUser, NsType::kMount, NsType::kPid, NsType::kNet, NsType::kIpc,
                     NsType::kUts, NsType::kCgroup, NsType::kTime}) {
      if (flags & NsCloneFlag(t)) names += StrCat(names.empty() ? "" : ",", NsTypeName(t));
    }
    return SysError(errno, "unshare(", names, ")");
  }
  return absl::OkStatus();
}

std::string IdMapText(const std::vector<IdMapping>& maps) {
  std::string out;
  for (const auto& m : maps) out += StrCat(m.container_id, " ", m.host_id, " ", m.size, "\n");
  return out;
}

bool IdMapped(const std::vector<IdMapping>& maps, uint32_t id) {
  for (const auto& m : maps) {
    if (id >= m.container_id && id - m.container_id < m.size) return true;
  }
  return false;
}

Status SetHostname(const std::string& name) {
  if (sethostname(name.data(), name.size()) < 0) return SysError(errno, "sethostname ", name);
  return absl::OkStatus();
}

}  // namespace kata
