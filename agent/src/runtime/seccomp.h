// Seccomp filters of container processes (linux.seccomp), as runc and crun build them.
//
//   ASSIGN_OR_RETURN(SeccompSpec s, ParseSeccomp(spec.linux().seccomp()));  // pure: in the
//                                                                            // agent too
//   ASSIGN_OR_RETURN(SeccompProgram p, CompileSeccomp(s, &warnings));        // libseccomp,
//   ...                                                                      // set-up only
//   RETURN_IF_ERROR(LoadSeccomp(p));                                         // seccomp(2)
//
// ParseSeccomp validates every name (actions, architectures, flags, operators) and is
// all the agent itself does with a filter. CompileSeccomp runs in the set-up process: it
// builds the rules with libseccomp and exports the BPF program, which LoadSeccomp then
// installs with seccomp(SECCOMP_SET_MODE_FILTER, flags). The agent never installs a
// filter on itself.
//
// Rules follow crun: a rule whose action is the default action is skipped (libseccomp
// refuses it); a syscall name libseccomp does not know is skipped with a warning (a
// profile written for a newer kernel still loads); argument conditions on distinct
// arguments are ANDed in one rule, while two conditions on the same argument become one
// rule each (ORed). errnoRet is allowed only with SCMP_ACT_ERRNO and SCMP_ACT_TRACE and
// defaults to EPERM. SCMP_ACT_NOTIFY needs a listener the agent does not provide:
// UNIMPLEMENTED.
//
// When to load: with no_new_privs set, as the last step before exec; without it, while
// the process still has CAP_SYS_ADMIN (before the identity change and the capability
// drop), or seccomp(2) fails with EACCES. Everything the set-up does after the load must
// be allowed by the filter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "oci.pb.h"
#include "util/status.h"

namespace kata {

enum class SeccompActionType { kKillThread, kKillProcess, kTrap, kErrno, kTrace, kAllow, kLog };

struct SeccompAction {
  SeccompActionType type = SeccompActionType::kAllow;
  uint32_t ret = 0;  // the errno of kErrno, the message of kTrace
};

enum class SeccompOp { kNe, kLt, kLe, kEq, kGe, kGt, kMaskedEq };

struct SeccompArg {
  uint32_t index = 0;  // 0..5
  uint64_t value = 0, value_two = 0;
  SeccompOp op = SeccompOp::kEq;
};

struct SeccompRule {
  std::vector<std::string> names;
  SeccompAction action;
  std::vector<SeccompArg> args;
};

struct SeccompSpec {
  SeccompAction default_action;
  std::vector<std::string> architectures;  // libseccomp's names: "x86_64", "x86", "aarch64"
  uint32_t flags = 0;                      // SECCOMP_FILTER_FLAG_*
  std::vector<SeccompRule> rules;
};

// Field names in errors as OCI spells them: "linux.seccomp.syscalls[2].args[0].op: ...".
StatusOr<SeccompSpec> ParseSeccomp(const grpc::LinuxSeccomp& in);

struct SeccompProgram {
  std::string bpf;  // struct sock_filter[], 8 bytes each
  uint32_t flags = 0;
  size_t instructions() const { return bpf.size() / 8; }
};

// Builds the filter with libseccomp. Unknown syscall names are left out, each named in
// *warnings.
StatusOr<SeccompProgram> CompileSeccomp(const SeccompSpec& spec,
                                        std::vector<std::string>* warnings);

// seccomp(SECCOMP_SET_MODE_FILTER, flags, program).
Status LoadSeccomp(const SeccompProgram& program);

}  // namespace kata
