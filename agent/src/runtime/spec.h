// The container's OCI spec as plain structs: converted from the protobuf once, validated,
// then trusted by every later step.
//
//   ASSIGN_OR_RETURN(ContainerSpec spec, ParseSpec(req.OCI()));   // INVALID_ARGUMENT naming
//                                                                  // the field
//                                                                  ("mounts[2].destination: ...")
//
// ParseSpec is pure (no system calls), so the agent (to validate a request) and the
// set-up process (to act on it) run the same conversion on the same bytes.
// RewriteSpecForInit is the agent's own changes to the spec before it is handed to the
// set-up process: where the rootfs is, which pid namespace, and the sandbox defaults.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "oci.pb.h"
#include "runtime/caps.h"
#include "runtime/rlimits.h"
#include "runtime/seccomp.h"
#include "util/status.h"

namespace kata {

enum class NsType { kUser, kMount, kPid, kNet, kIpc, kUts, kCgroup, kTime };

struct NamespaceSpec {
  NsType type;
  std::string path;  // empty: a new namespace; otherwise join this one
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct MountSpec {
  std::string destination;  // absolute, lexically clean, never "/"
  std::string source;
  std::string type;
  std::vector<std::string> options;
};

struct DeviceSpec {
  std::string path;  // absolute, clean
  char type = 'c';   // c, b, u (unbuffered char), p (fifo)
  int64_t major = 0;
  int64_t minor = 0;
  uint32_t file_mode = 0666;  // permission bits
  uid_t uid = 0;
  gid_t gid = 0;
};

// The user and groups of a process by name or number (CreateContainer's and ExecProcess's
// StringUser), resolved in the container's /etc/passwd and /etc/group (runtime/user.h).
struct UserNames {
  std::string user;  // a name or a decimal uid; never empty
  std::string group;
  std::vector<std::string> additional;
};

struct ConsoleSize {
  uint32_t height = 0, width = 0;  // 0: the terminal's default
};

struct ProcessSpec {
  bool terminal = false;
  ConsoleSize console_size;
  std::vector<std::string> args;  // non-empty, args[0] non-empty
  std::vector<std::string> env;   // each "KEY=value"
  std::string cwd = "/";          // absolute
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::string username;            // OCI's Windows-only field: ignored
  std::optional<UserNames> names;  // set by the agent from StringUser; replaces the ids above
  bool no_new_privileges = false;
  // Absent: the process keeps what its uid gives it (root: everything). Present: the five
  // sets exactly as listed.
  std::optional<CapSets> capabilities;
  std::vector<RlimitSpec> rlimits;
  int oom_score_adj = 0;  // written when it differs (proto3: 0 also when not given)
  std::string apparmor_profile, selinux_label;  // accepted; the guest has no LSM
};

struct ContainerSpec {
  ProcessSpec process;
  std::string root_path;
  bool root_readonly = false;
  std::string hostname;
  std::vector<MountSpec> mounts;
  std::vector<NamespaceSpec> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<DeviceSpec> devices;
  std::map<std::string, std::string> sysctls;
  unsigned long rootfs_propagation = 0;  // MS_* propagation flags (with MS_REC), 0: default
  std::vector<std::string> masked_paths, readonly_paths;
  std::optional<SeccompSpec> seccomp;

  const NamespaceSpec* FindNamespace(NsType t) const;
  bool HasNamespace(NsType t) const { return FindNamespace(t) != nullptr; }
  // A namespace the container gets of its own (listed without a path).
  bool NewNamespace(NsType t) const {
    const NamespaceSpec* ns = FindNamespace(t);
    return ns && ns->path.empty();
  }
};

// Namespace names as OCI spells them ("pid", "network", "mount", ...).
std::optional<NsType> NsTypeFromName(std::string_view name);
const char* NsTypeName(NsType t);
// The CLONE_NEW* flag and the /proc/PID/ns/<name> entry of a namespace type.
int NsCloneFlag(NsType t);
const char* NsProcName(NsType t);

StatusOr<ContainerSpec> ParseSpec(const grpc::Spec& spec);

// The process part alone (ExecProcess's process): the same checks and field names.
Status ParseProcessSpec(const grpc::Process& p, ProcessSpec* out);

// Container and exec ids, as upstream checks them: ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ (at most 256).
Status ValidateId(std::string_view what, std::string_view id);

struct SpecRewrite {
  std::string bundle_dir;        // <bundle base>/<container id>: where a relative root.path lives
  std::string pid_ns_path;       // join this pid namespace; empty: a new one
  std::string default_hostname;  // the sandbox's, for a container with a new uts namespace and none
};

// The agent's changes before the set-up process sees the spec: root.path made absolute;
// every pid namespace entry replaced by the one the agent chose (a container always gets
// a pid namespace, whatever the spec says: the Kata runtime strips it); a mount namespace
// added when missing (set-up in the agent's own would take its root away); the sandbox
// hostname for a container with its own uts namespace and no hostname.
void RewriteSpecForInit(const SpecRewrite& rw, grpc::Spec* spec);

}  // namespace kata
