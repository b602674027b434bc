#include "runtime/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <memory>

#include "runtime/errors.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

constexpr size_t kMaxProgramInstructions = 4096;  // BPF_MAXINSNS: the kernel refuses more

Status Invalid(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(field, ": ", what));
}

std::string Quoted(std::string_view s) { return StrCat("\"", s, "\""); }

struct ActionName {
  const char* name;
  SeccompActionType type;
};

constexpr ActionName kActions[] = {
    {"SCMP_ACT_KILL", SeccompActionType::kKillThread},
    {"SCMP_ACT_KILL_THREAD", SeccompActionType::kKillThread},
    {"SCMP_ACT_KILL_PROCESS", SeccompActionType::kKillProcess},
    {"SCMP_ACT_TRAP", SeccompActionType::kTrap},
    {"SCMP_ACT_ERRNO", SeccompActionType::kErrno},
    {"SCMP_ACT_TRACE", SeccompActionType::kTrace},
    {"SCMP_ACT_ALLOW", SeccompActionType::kAllow},
    {"SCMP_ACT_LOG", SeccompActionType::kLog},
};

struct OpName {
  const char* name;
  SeccompOp op;
};

constexpr OpName kOps[] = {
    {"SCMP_CMP_NE", SeccompOp::kNe},
    {"SCMP_CMP_LT", SeccompOp::kLt},
    {"SCMP_CMP_LE", SeccompOp::kLe},
    {"SCMP_CMP_EQ", SeccompOp::kEq},
    {"SCMP_CMP_GE", SeccompOp::kGe},
    {"SCMP_CMP_GT", SeccompOp::kGt},
    {"SCMP_CMP_MASKED_EQ", SeccompOp::kMaskedEq},
};

struct FlagName {
  const char* name;
  uint32_t flag;
};

constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

// libseccomp's architecture names (seccomp_arch_resolve_name), as of 2.5.
constexpr const char* kArches[] = {
    "x86",       "x86_64", "x32",      "arm",         "aarch64", "mips",  "mips64",
    "mips64n32", "mipsel", "mipsel64", "mipsel64n32", "ppc",     "ppc64", "ppc64le",
    "s390",      "s390x",  "parisc",   "parisc64",    "riscv64",
};

StatusOr<SeccompAction> ParseAction(std::string_view field, const std::string& name, bool has_errno,
                                    uint32_t errno_ret) {
  if (name == "SCMP_ACT_NOTIFY") {
    return absl::UnimplementedError(
        StrCat(field, ": SCMP_ACT_NOTIFY is not supported (no seccomp listener in the guest)"));
  }
  for (const auto& a : kActions) {
    if (name != a.name) continue;
    SeccompAction act;
    act.type = a.type;
    bool takes_errno = a.type == SeccompActionType::kErrno || a.type == SeccompActionType::kTrace;
    if (has_errno && !takes_errno) {
      return Invalid(field, StrCat("errnoRet given for ", name,
                                   " (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)"));
    }
    if (has_errno && errno_ret > 4095) {
      return Invalid(field, StrCat("errnoRet ", errno_ret, " is not an errno (at most 4095)"));
    }
    if (takes_errno) act.ret = has_errno ? errno_ret : EPERM;
    return act;
  }
  return Invalid(field, StrCat("unknown action ", Quoted(name)));
}

uint32_t ScmpAction(const SeccompAction& a) {
  switch (a.type) {
    case SeccompActionType::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case SeccompActionType::kKillProcess:
      return SCMP_ACT_KILL_PROCESS;
    case SeccompActionType::kTrap:
      return SCMP_ACT_TRAP;
    case SeccompActionType::kErrno:
      return SCMP_ACT_ERRNO(a.ret);
    case SeccompActionType::kTrace:
      return SCMP_ACT_TRACE(a.ret);
    case SeccompActionType::kAllow:
      return SCMP_ACT_ALLOW;
    case SeccompActionType::kLog:
      return SCMP_ACT_LOG;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare ScmpOp(SeccompOp op) {
  switch (op) {
    case SeccompOp::kNe:
      return SCMP_CMP_NE;
    case SeccompOp::kLt:
      return SCMP_CMP_LT;
    case SeccompOp::kLe:
      return SCMP_CMP_LE;
    case SeccompOp::kEq:
      return SCMP_CMP_EQ;
    case SeccompOp::kGe:
      return SCMP_CMP_GE;
    case SeccompOp::kGt:
      return SCMP_CMP_GT;
    case SeccompOp::kMaskedEq:
      return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

struct CtxRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

Status LibError(int rc, std::string_view what) { return SysError(-rc, what); }

}  // namespace

StatusOr<SeccompSpec> ParseSeccomp(const grpc::LinuxSeccomp& in) {
  const std::string base = "linux.seccomp";
  SeccompSpec s;
  if (in.defaultaction().empty()) return Invalid(base + ".defaultAction", "missing");
  ASSIGN_OR_RETURN(s.default_action,
                   ParseAction(base + ".defaultAction", in.defaultaction(), false, 0));
  for (int i = 0; i < in.architectures_size(); i++) {
    std::string a = in.architectures(i);
    std::string field = StrCat(base, ".architectures[", i, "]");
    if (a.rfind("SCMP_ARCH_", 0) == 0) a = a.substr(10);
    for (char& c : a) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    bool known = false;
    for (const char* k : kArches) known |= a == k;
    if (!known) return Invalid(field, StrCat("unknown architecture ", Quoted(in.architectures(i))));
    s.architectures.push_back(a);
  }
  for (int i = 0; i < in.flags_size(); i++) {
    std::string field = StrCat(base, ".flags[", i, "]");
    const std::string& f = in.flags(i);
    if (f == "SECCOMP_FILTER_FLAG_NEW_LISTENER") {
      return absl::UnimplementedError(StrCat(
          field, ": SECCOMP_FILTER_FLAG_NEW_LISTENER is not supported (no seccomp listener)"));
    }
    bool known = false;
    for (const auto& k : kFlags) {
      if (f == k.name) {
        s.flags |= k.flag;
        known = true;
      }
    }
    if (!known) return Invalid(field, StrCat("unknown flag ", Quoted(f)));
  }
  for (int i = 0; i < in.syscalls_size(); i++) {
    const grpc::LinuxSyscall& sc = in.syscalls(i);
    std::string field = StrCat(base, ".syscalls[", i, "]");
    SeccompRule r;
    if (sc.names().empty()) return Invalid(field + ".names", "empty");
    for (int j = 0; j < sc.names_size(); j++) {
      const std::string& n = sc.names(j);
      if (n.empty() || n.size() > 64 || n.find('\0') != std::string::npos) {
        return Invalid(StrCat(field, ".names[", j, "]"),
                       StrCat(Quoted(n), " is not a syscall name"));
      }
      r.names.push_back(n);
    }
    bool has_errno = sc.ErrnoRet_case() == grpc::LinuxSyscall::kErrnoret;
    ASSIGN_OR_RETURN(r.action,
                     ParseAction(field + ".action", sc.action(), has_errno, sc.errnoret()));
    if (sc.args_size() > 6) return Invalid(field + ".args", "more than 6 conditions");
    for (int j = 0; j < sc.args_size(); j++) {
      const grpc::LinuxSeccompArg& a = sc.args(j);
      std::string af = StrCat(field, ".args[", j, "]");
      if (a.index() >= 6) return Invalid(af + ".index", StrCat(a.index(), " is not 0..5"));
      SeccompArg arg;
      arg.index = static_cast<uint32_t>(a.index());
      arg.value = a.value();
      arg.value_two = a.valuetwo();
      bool known = false;
      for (const auto& o : kOps) {
        if (a.op() == o.name) {
          arg.op = o.op;
          known = true;
        }
      }
      if (!known) return Invalid(af + ".op", StrCat("unknown operator ", Quoted(a.op())));
      r.args.push_back(arg);
    }
    s.rules.push_back(std::move(r));
  }
  return s;
}

StatusOr<SeccompProgram> CompileSeccomp(const SeccompSpec& spec,
                                        std::vector<std::string>* warnings) {
  const uint32_t def = ScmpAction(spec.default_action);
  std::unique_ptr<void, CtxRelease> ctx(seccomp_init(def));
  if (!ctx) return absl::InternalError("seccomp_init failed");
  for (const std::string& a : spec.architectures) {
    uint32_t token = seccomp_arch_resolve_name(a.c_str());
    if (token == 0)
      return absl::InvalidArgumentError(StrCat("libseccomp does not know architecture ", a));
    int rc = seccomp_arch_add(ctx.get(), token);
    if (rc < 0 && rc != -EEXIST) return LibError(rc, StrCat("seccomp_arch_add ", a));
  }
  for (size_t i = 0; i < spec.rules.size(); i++) {
    const SeccompRule& r = spec.rules[i];
    const uint32_t act = ScmpAction(r.action);
    if (act == def) continue;  // the default already; libseccomp refuses such a rule
    std::vector<scmp_arg_cmp> cmp;
    int per_index[6] = {0, 0, 0, 0, 0, 0};
    bool repeated_index = false;
    for (const SeccompArg& a : r.args) {
      cmp.push_back({a.index, ScmpOp(a.op), a.value, a.value_two});
      repeated_index |= ++per_index[a.index] > 1;
    }
    for (const std::string& name : r.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        if (warnings)
          warnings->push_back(StrCat("seccomp: unknown syscall ", Quoted(name), " skipped"));
        continue;
      }
      int rc = 0;
      if (cmp.empty()) {
        rc = seccomp_rule_add_array(ctx.get(), act, nr, 0, nullptr);
      } else if (!repeated_index) {
        rc = seccomp_rule_add_array(ctx.get(), act, nr, static_cast<unsigned>(cmp.size()),
                                    cmp.data());
      } else {
        for (size_t k = 0; k < cmp.size() && rc == 0; k++) {
          rc = seccomp_rule_add_array(ctx.get(), act, nr, 1, &cmp[k]);
        }
      }
      if (rc < 0) return LibError(rc, StrCat("seccomp rule for ", name, " (syscalls[", i, "])"));
    }
  }
  UniqueFd mem(static_cast<int>(syscall(SYS_memfd_create, "seccomp-bpf", MFD_CLOEXEC)));
  if (!mem) return SysError(errno, "memfd_create for the seccomp program");
  int rc = seccomp_export_bpf(ctx.get(), mem.get());
  if (rc < 0) return LibError(rc, "seccomp_export_bpf");
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size < 0) return SysError(errno, "lseek");
  SeccompProgram p;
  p.flags = spec.flags;
  p.bpf.resize(static_cast<size_t>(size));
  if (pread(mem.get(), p.bpf.data(), p.bpf.size(), 0) != size)
    return SysError(EIO, "read the seccomp program");
  if (p.bpf.empty() || p.bpf.size() % sizeof(struct sock_filter) != 0) {
    return absl::InternalError(StrCat("seccomp program of ", p.bpf.size(), " bytes"));
  }
  if (p.instructions() > kMaxProgramInstructions) {
    return absl::InvalidArgumentError(StrCat("linux.seccomp: the filter has ", p.instructions(),
                                             " instructions; the kernel takes at most ",
                                             kMaxProgramInstructions));
  }
  return p;
}

Status LoadSeccomp(const SeccompProgram& program) {
  struct sock_fprog prog;
  prog.len = static_cast<unsigned short>(program.instructions());
  prog.filter = reinterpret_cast<struct sock_filter*>(const_cast<char*>(program.bpf.data()));
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, program.flags, &prog) < 0) {
    int e = errno;
    if (e == EACCES) {
      return SysError(e,
                      "seccomp(SECCOMP_SET_MODE_FILTER): neither no_new_privs nor CAP_SYS_ADMIN");
    }
    return SysError(e, "seccomp(SECCOMP_SET_MODE_FILTER, flags ", program.flags, ", ",
                    program.instructions(), " instructions)");
  }
  return absl::OkStatus();
}

}  // namespace kata
