// The process settings of the container runtime: capabilities, rlimits, oom_score_adj
// and seccomp in the spec (pure validation), the passwd/group parser and identity
// resolution (pure), and seccomp programs: compiled with libseccomp, then run through a
// classic-BPF interpreter for given syscalls, and loaded for real in a child process.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "runtime/caps.h"
#include "runtime/rlimits.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "runtime/user.h"

using namespace kata;

namespace {

grpc::Spec MinimalSpec() {
  grpc::Spec s;
  s.mutable_process()->add_args("/bin/true");
  s.mutable_process()->set_cwd("/");
  s.mutable_root()->set_path("/rootfs");
  return s;
}

bool Contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

std::string RefusedWith(const grpc::Spec& s, absl::StatusCode code) {
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == code);
  return std::string(r.status().message());
}

std::string Refused(const grpc::Spec& s) {
  return RefusedWith(s, absl::StatusCode::kInvalidArgument);
}

// ---- a classic-BPF interpreter, enough for seccomp programs ----

struct Data {
  int32_t nr = 0;
  uint32_t arch = AUDIT_ARCH_X86_64;
  uint64_t ip = 0;
  uint64_t args[6] = {0, 0, 0, 0, 0, 0};
};

uint32_t LoadWord(const Data& d, uint32_t off) {
  static_assert(sizeof(Data) == sizeof(struct seccomp_data));
  REQUIRE(off % 4 == 0);
  REQUIRE(off + 4 <= sizeof(Data));
  uint32_t w;
  memcpy(&w, reinterpret_cast<const char*>(&d) + off, 4);
  return w;
}

// The program's verdict (SECCOMP_RET_*) for d.
uint32_t Run(const SeccompProgram& p, const Data& d) {
  const auto* insn = reinterpret_cast<const struct sock_filter*>(p.bpf.data());
  const size_t n = p.instructions();
  uint32_t A = 0, X = 0, M[BPF_MEMWORDS] = {};
  for (size_t pc = 0; pc < n; pc++) {
    const struct sock_filter& f = insn[pc];
    const uint32_t src = BPF_SRC(f.code) == BPF_X ? X : f.k;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS)
          A = LoadWord(d, f.k);
        else if (BPF_MODE(f.code) == BPF_IMM)
          A = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM)
          A = M[f.k];
        else
          FAIL("unsupported ld mode");
        break;
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_IMM)
          X = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM)
          X = M[f.k];
        else
          FAIL("unsupported ldx mode");
        break;
      case BPF_ST:
        M[f.k] = A;
        break;
      case BPF_STX:
        M[f.k] = X;
        break;
      case BPF_ALU:
        switch (BPF_OP(f.code)) {
          case BPF_ADD:
            A += src;
            break;
          case BPF_SUB:
            A -= src;
            break;
          case BPF_MUL:
            A *= src;
            break;
          case BPF_DIV:
            A = src ? A / src : 0;
            break;
          case BPF_OR:
            A |= src;
            break;
          case BPF_AND:
            A &= src;
            break;
          case BPF_LSH:
            A <<= src;
            break;
          case BPF_RSH:
            A >>= src;
            break;
          case BPF_XOR:
            A ^= src;
            break;
          case BPF_NEG:
            A = -A;
            break;
          default:
            FAIL("unsupported alu op");
        }
        break;
      case BPF_JMP: {
        bool t = false;
        switch (BPF_OP(f.code)) {
          case BPF_JA:
            pc += f.k;
            continue;
          case BPF_JEQ:
            t = A == src;
            break;
          case BPF_JGT:
            t = A > src;
            break;
          case BPF_JGE:
            t = A >= src;
            break;
          case BPF_JSET:
            t = (A & src) != 0;
            break;
          default:
            FAIL("unsupported jump");
        }
        pc += t ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? A : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX)
          X = A;
        else
          A = X;
        break;
    }
  }
  FAIL("the program fell off its end");
  return 0;
}

grpc::LinuxSeccomp Profile(const char* default_action) {
  grpc::LinuxSeccomp s;
  s.set_defaultaction(default_action);
  s.add_architectures("SCMP_ARCH_X86_64");
  return s;
}

grpc::LinuxSyscall* AddRule(grpc::LinuxSeccomp* s, std::initializer_list<const char*> names,
                            const char* action) {
  grpc::LinuxSyscall* r = s->add_syscalls();
  for (const char* n : names) r->add_names(n);
  r->set_action(action);
  return r;
}

void AddArg(grpc::LinuxSyscall* r, uint64_t index, const char* op, uint64_t value,
            uint64_t two = 0) {
  grpc::LinuxSeccompArg* a = r->add_args();
  a->set_index(index);
  a->set_op(op);
  a->set_value(value);
  a->set_valuetwo(two);
}

SeccompProgram Compile(const grpc::LinuxSeccomp& in, std::vector<std::string>* warnings = nullptr) {
  StatusOr<SeccompSpec> spec = ParseSeccomp(in);
  REQUIRE(spec.ok());
  std::vector<std::string> w;
  StatusOr<SeccompProgram> p = CompileSeccomp(*spec, warnings ? warnings : &w);
  if (!p.ok()) FAIL(p.status().ToString());
  return *p;
}

Data Call(int nr, std::initializer_list<uint64_t> args = {}) {
  Data d;
  d.nr = nr;
  size_t i = 0;
  for (uint64_t a : args) d.args[i++] = a;
  return d;
}

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
uint32_t Errno(uint32_t e) { return SECCOMP_RET_ERRNO | e; }

}  // namespace

// ---- capabilities, rlimits, oom_score_adj in the spec ----

TEST_CASE("capability names and masks") {
  CHECK(CapFromName("CAP_CHOWN") == 0);
  CHECK(CapFromName("CAP_SYS_ADMIN") == 21);
  CHECK(CapFromName("CAP_CHECKPOINT_RESTORE") == 40);
  CHECK(!CapFromName("CAP_sys_admin"));
  CHECK(!CapFromName("SYS_ADMIN"));
  CHECK(!CapFromName("CAP_NOPE"));
  for (int c = 0; c <= kLastKnownCap; c++) CHECK(CapFromName(CapName(c)) == c);
  CHECK(CapMaskHex(0xa80425fbULL) == "00000000a80425fb");
  CHECK(CapMaskHex((uint64_t{1} << 41) - 1) == "000001ffffffffff");
}

TEST_CASE("the five capability sets convert; absent means unchanged") {
  grpc::Spec s = MinimalSpec();
  StatusOr<ContainerSpec> none = ParseSpec(s);
  REQUIRE(none.ok());
  CHECK(!none->process.capabilities);
  auto* c = s.mutable_process()->mutable_capabilities();
  c->add_bounding("CAP_NET_ADMIN");
  c->add_bounding("CAP_CHOWN");
  c->add_effective("CAP_CHOWN");
  c->add_permitted("CAP_CHOWN");
  c->add_inheritable("CAP_KILL");
  c->add_ambient("CAP_KILL");
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(r.ok());
  REQUIRE(r->process.capabilities);
  CHECK(r->process.capabilities->bounding == ((1ULL << 12) | 1ULL));
  CHECK(r->process.capabilities->effective == 1ULL);
  CHECK(r->process.capabilities->permitted == 1ULL);
  CHECK(r->process.capabilities->inheritable == (1ULL << 5));
  CHECK(r->process.capabilities->ambient == (1ULL << 5));
  // An empty message is present: every set empty.
  grpc::Spec e = MinimalSpec();
  e.mutable_process()->mutable_capabilities();
  StatusOr<ContainerSpec> er = ParseSpec(e);
  REQUIRE(er.ok());
  REQUIRE(er->process.capabilities);
  CHECK(er->process.capabilities->bounding == 0);
}

TEST_CASE("an unknown capability name is refused, naming the set and index") {
  grpc::Spec s = MinimalSpec();
  s.mutable_process()->mutable_capabilities()->add_permitted("CAP_CHOWN");
  s.mutable_process()->mutable_capabilities()->add_permitted("CAP_FLY");
  std::string m = Refused(s);
  CHECK(Contains(m, "process.capabilities.permitted[1]"));
  CHECK(Contains(m, "CAP_FLY"));
}

TEST_CASE("rlimits convert; unknown, duplicate and inverted ones are refused") {
  grpc::Spec s = MinimalSpec();
  auto* r = s.mutable_process()->add_rlimits();
  r->set_type("RLIMIT_NOFILE");
  r->set_soft(100);
  r->set_hard(200);
  auto* r2 = s.mutable_process()->add_rlimits();
  r2->set_type("RLIMIT_CORE");
  StatusOr<ContainerSpec> ok = ParseSpec(s);
  REQUIRE(ok.ok());
  REQUIRE(ok->process.rlimits.size() == 2);
  CHECK(ok->process.rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(ok->process.rlimits[0].soft == 100);
  CHECK(ok->process.rlimits[0].hard == 200);
  CHECK(ok->process.rlimits[1].resource == RLIMIT_CORE);

  grpc::Spec bad = s;
  bad.mutable_process()->add_rlimits()->set_type("RLIMIT_WINGS");
  CHECK(Contains(Refused(bad), "process.rlimits[2].type"));
  grpc::Spec dup = s;
  dup.mutable_process()->add_rlimits()->set_type("RLIMIT_NOFILE");
  CHECK(Contains(Refused(dup), "listed twice"));
  grpc::Spec inv = MinimalSpec();
  auto* ri = inv.mutable_process()->add_rlimits();
  ri->set_type("RLIMIT_NPROC");
  ri->set_soft(10);
  ri->set_hard(5);
  CHECK(Contains(Refused(inv), "above the hard limit"));
  for (const char* n :
       {"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
        "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"}) {
    CHECK(RlimitFromName(n));
  }
}

TEST_CASE("oom_score_adj range, LSM fields kept for the warning") {
  grpc::Spec s = MinimalSpec();
  s.mutable_process()->set_oomscoreadj(-1001);
  CHECK(Contains(Refused(s), "process.oomScoreAdj"));
  s.mutable_process()->set_oomscoreadj(500);
  s.mutable_process()->set_apparmorprofile("docker-default");
  s.mutable_process()->set_selinuxlabel("system_u:system_r:container_t:s0");
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(r.ok());
  CHECK(r->process.oom_score_adj == 500);
  CHECK(r->process.apparmor_profile == "docker-default");
}

TEST_CASE("console size and terminal convert") {
  grpc::Spec s = MinimalSpec();
  s.mutable_process()->set_terminal(true);
  s.mutable_process()->mutable_consolesize()->set_height(40);
  s.mutable_process()->mutable_consolesize()->set_width(120);
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(r.ok());
  CHECK(r->process.terminal);
  CHECK(r->process.console_size.height == 40);
  CHECK(r->process.console_size.width == 120);
}

// ---- seccomp in the spec ----

TEST_CASE("seccomp profiles convert with every field") {
  grpc::Spec s = MinimalSpec();
  grpc::LinuxSeccomp* sc = s.mutable_linux()->mutable_seccomp();
  sc->set_defaultaction("SCMP_ACT_ERRNO");
  sc->add_architectures("SCMP_ARCH_X86_64");
  sc->add_architectures("SCMP_ARCH_X86");
  sc->add_architectures("x32");
  sc->add_flags("SECCOMP_FILTER_FLAG_LOG");
  sc->add_flags("SECCOMP_FILTER_FLAG_SPEC_ALLOW");
  grpc::LinuxSyscall* r = AddRule(sc, {"read", "write"}, "SCMP_ACT_ALLOW");
  AddArg(r, 0, "SCMP_CMP_MASKED_EQ", 0xff, 3);
  grpc::LinuxSyscall* r2 = AddRule(sc, {"mkdir"}, "SCMP_ACT_ERRNO");
  r2->set_errnoret(38);
  StatusOr<ContainerSpec> c = ParseSpec(s);
  REQUIRE(c.ok());
  REQUIRE(c->seccomp);
  CHECK(c->seccomp->default_action.type == SeccompActionType::kErrno);
  CHECK(c->seccomp->default_action.ret == EPERM);
  CHECK(c->seccomp->architectures == std::vector<std::string>{"x86_64", "x86", "x32"});
  CHECK(c->seccomp->flags == (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW));
  REQUIRE(c->seccomp->rules.size() == 2);
  CHECK(c->seccomp->rules[0].names == std::vector<std::string>{"read", "write"});
  CHECK(c->seccomp->rules[0].args[0].op == SeccompOp::kMaskedEq);
  CHECK(c->seccomp->rules[0].args[0].value == 0xff);
  CHECK(c->seccomp->rules[0].args[0].value_two == 3);
  CHECK(c->seccomp->rules[1].action.ret == 38);
  // No seccomp section: none.
  StatusOr<ContainerSpec> none = ParseSpec(MinimalSpec());
  REQUIRE(none.ok());
  CHECK(!none->seccomp);
}

TEST_CASE("bad seccomp profiles are refused naming the field") {
  auto with = [](auto fn) {
    grpc::Spec s = MinimalSpec();
    grpc::LinuxSeccomp* sc = s.mutable_linux()->mutable_seccomp();
    sc->set_defaultaction("SCMP_ACT_ALLOW");
    fn(sc);
    return s;
  };
  CHECK(Contains(Refused(with([](auto* sc) { sc->clear_defaultaction(); })),
                 "linux.seccomp.defaultAction: missing"));
  CHECK(Contains(Refused(with([](auto* sc) { sc->set_defaultaction("SCMP_ACT_MAYBE"); })),
                 "SCMP_ACT_MAYBE"));
  CHECK(Contains(Refused(with([](auto* sc) { sc->add_architectures("SCMP_ARCH_Z80"); })),
                 "linux.seccomp.architectures[0]"));
  CHECK(Contains(Refused(with([](auto* sc) { sc->add_flags("SECCOMP_FILTER_FLAG_FAST"); })),
                 "linux.seccomp.flags[0]"));
  CHECK(Contains(
      Refused(with([](auto* sc) { AddRule(sc, {"read"}, "SCMP_ACT_ALLOW")->set_errnoret(1); })),
      "errnoRet given for SCMP_ACT_ALLOW"));
  CHECK(Contains(
      Refused(with([](auto* sc) { AddRule(sc, {"read"}, "SCMP_ACT_ERRNO")->set_errnoret(5000); })),
      "not an errno"));
  CHECK(Contains(Refused(with([](auto* sc) {
                   AddArg(AddRule(sc, {"read"}, "SCMP_ACT_ERRNO"), 6, "SCMP_CMP_EQ", 1);
                 })),
                 "linux.seccomp.syscalls[0].args[0].index"));
  CHECK(Contains(Refused(with([](auto* sc) {
                   AddArg(AddRule(sc, {"read"}, "SCMP_ACT_ERRNO"), 0, "SCMP_CMP_APPROX", 1);
                 })),
                 "linux.seccomp.syscalls[0].args[0].op"));
  CHECK(Contains(Refused(with([](auto* sc) { AddRule(sc, {}, "SCMP_ACT_ERRNO"); })),
                 "linux.seccomp.syscalls[0].names: empty"));
  CHECK(Contains(RefusedWith(with([](auto* sc) { AddRule(sc, {"read"}, "SCMP_ACT_NOTIFY"); }),
                             absl::StatusCode::kUnimplemented),
                 "SCMP_ACT_NOTIFY"));
  CHECK(Contains(
      RefusedWith(with([](auto* sc) { sc->add_flags("SECCOMP_FILTER_FLAG_NEW_LISTENER"); }),
                  absl::StatusCode::kUnimplemented),
      "NEW_LISTENER"));
}

// ---- seccomp programs ----

TEST_CASE("default action, errnoRet and plain rules") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ALLOW");
  AddRule(&s, {"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO")->set_errnoret(121);
  AddRule(&s, {"chroot"}, "SCMP_ACT_ERRNO");  // EPERM by default
  AddRule(&s, {"reboot"}, "SCMP_ACT_KILL_PROCESS");
  AddRule(&s, {"swapon"}, "SCMP_ACT_KILL");
  AddRule(&s, {"acct"}, "SCMP_ACT_TRAP");
  AddRule(&s, {"uselib"}, "SCMP_ACT_TRACE")->set_errnoret(7);
  AddRule(&s, {"syslog"}, "SCMP_ACT_LOG");
  SeccompProgram p = Compile(s);
  CHECK(Run(p, Call(SYS_getpid)) == kAllow);
  CHECK(Run(p, Call(SYS_mkdir)) == Errno(121));
  CHECK(Run(p, Call(SYS_mkdirat)) == Errno(121));
  CHECK(Run(p, Call(SYS_chroot)) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_reboot)) == SECCOMP_RET_KILL_PROCESS);
  CHECK(Run(p, Call(SYS_swapon)) == SECCOMP_RET_KILL_THREAD);
  CHECK(Run(p, Call(SYS_acct)) == SECCOMP_RET_TRAP);
  CHECK(Run(p, Call(SYS_uselib)) == (SECCOMP_RET_TRACE | 7));
  CHECK(Run(p, Call(SYS_syslog)) == SECCOMP_RET_LOG);
  CHECK(p.flags == 0);
}

TEST_CASE("a deny-by-default profile: rules with the default action are skipped") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ERRNO");
  AddRule(&s, {"read", "write", "exit_group"}, "SCMP_ACT_ALLOW");
  AddRule(&s, {"open"}, "SCMP_ACT_ERRNO");  // the default: libseccomp would refuse it
  SeccompProgram p = Compile(s);
  CHECK(Run(p, Call(SYS_read)) == kAllow);
  CHECK(Run(p, Call(SYS_exit_group)) == kAllow);
  CHECK(Run(p, Call(SYS_open)) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_getpid)) == Errno(EPERM));
}

TEST_CASE("every comparison operator, 64-bit values included") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ALLOW");
  const uint64_t big = 0x100000005ULL;  // differs from 5 only in the high word
  AddArg(AddRule(&s, {"read"}, "SCMP_ACT_ERRNO"), 0, "SCMP_CMP_EQ", big);
  AddArg(AddRule(&s, {"write"}, "SCMP_ACT_ERRNO"), 1, "SCMP_CMP_NE", 7);
  AddArg(AddRule(&s, {"close"}, "SCMP_ACT_ERRNO"), 0, "SCMP_CMP_LT", big);
  AddArg(AddRule(&s, {"dup"}, "SCMP_ACT_ERRNO"), 0, "SCMP_CMP_LE", 10);
  AddArg(AddRule(&s, {"dup2"}, "SCMP_ACT_ERRNO"), 1, "SCMP_CMP_GE", big);
  AddArg(AddRule(&s, {"lseek"}, "SCMP_ACT_ERRNO"), 2, "SCMP_CMP_GT", 2);
  // clone with CLONE_NEWUSER (0x10000000) in its flags: denied, others allowed.
  AddArg(AddRule(&s, {"clone"}, "SCMP_ACT_ERRNO"), 0, "SCMP_CMP_MASKED_EQ", 0x10000000, 0x10000000);
  SeccompProgram p = Compile(s);
  CHECK(Run(p, Call(SYS_read, {big})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_read, {5})) == kAllow);
  CHECK(Run(p, Call(SYS_write, {0, 7})) == kAllow);
  CHECK(Run(p, Call(SYS_write, {0, 8})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_close, {5})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_close, {big})) == kAllow);
  CHECK(Run(p, Call(SYS_dup, {10})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_dup, {11})) == kAllow);
  CHECK(Run(p, Call(SYS_dup2, {0, big})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_dup2, {0, 5})) == kAllow);
  CHECK(Run(p, Call(SYS_lseek, {0, 0, 3})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_lseek, {0, 0, 2})) == kAllow);
  CHECK(Run(p, Call(SYS_clone, {0x10000000 | 0x11})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_clone, {0x11})) == kAllow);
}

TEST_CASE("conditions on distinct arguments AND, on the same argument OR") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ALLOW");
  grpc::LinuxSyscall* both = AddRule(&s, {"kill"}, "SCMP_ACT_ERRNO");
  AddArg(both, 0, "SCMP_CMP_EQ", 1);
  AddArg(both, 1, "SCMP_CMP_EQ", 9);
  grpc::LinuxSyscall* either = AddRule(&s, {"personality"}, "SCMP_ACT_ERRNO");
  AddArg(either, 0, "SCMP_CMP_EQ", 0x8);
  AddArg(either, 0, "SCMP_CMP_EQ", 0x20008);
  SeccompProgram p = Compile(s);
  CHECK(Run(p, Call(SYS_kill, {1, 9})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_kill, {1, 15})) == kAllow);
  CHECK(Run(p, Call(SYS_kill, {2, 9})) == kAllow);
  CHECK(Run(p, Call(SYS_personality, {0x8})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_personality, {0x20008})) == Errno(EPERM));
  CHECK(Run(p, Call(SYS_personality, {0})) == kAllow);
}

TEST_CASE("unknown syscall names are skipped with a warning") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ALLOW");
  AddRule(&s, {"no_such_syscall_2077", "mkdir"}, "SCMP_ACT_ERRNO");
  std::vector<std::string> warnings;
  SeccompProgram p = Compile(s, &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(Contains(warnings[0], "no_such_syscall_2077"));
  CHECK(Run(p, Call(SYS_mkdir)) == Errno(EPERM));
}

TEST_CASE("architectures: a listed one is filtered by its own numbers, others are killed") {
  grpc::LinuxSeccomp only64 = Profile("SCMP_ACT_ALLOW");
  AddRule(&only64, {"getpid"}, "SCMP_ACT_ERRNO")->set_errnoret(1);
  Data i386 = Call(20);  // getpid on i386
  i386.arch = AUDIT_ARCH_I386;
  const uint32_t bad_arch = Run(Compile(only64), i386);  // libseccomp's bad-arch action: a kill
  CHECK((bad_arch == SECCOMP_RET_KILL_THREAD || bad_arch == SECCOMP_RET_KILL_PROCESS));

  grpc::LinuxSeccomp both = only64;
  both.add_architectures("SCMP_ARCH_X86");
  SeccompProgram p = Compile(both);
  CHECK(Run(p, i386) == Errno(1));
  CHECK(Run(p, Call(SYS_getpid)) == Errno(1));
  Data i386_other = Call(39);  // i386 mkdir, x86_64 getpid
  i386_other.arch = AUDIT_ARCH_I386;
  CHECK(Run(p, i386_other) == kAllow);
}

TEST_CASE("flags pass through to the program") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ALLOW");
  s.add_flags("SECCOMP_FILTER_FLAG_SPEC_ALLOW");
  s.add_flags("SECCOMP_FILTER_FLAG_TSYNC");
  CHECK(Compile(s).flags == (SECCOMP_FILTER_FLAG_SPEC_ALLOW | SECCOMP_FILTER_FLAG_TSYNC));
}

TEST_CASE("a compiled program loaded in a child denies with the spec's errno") {
  grpc::LinuxSeccomp s = Profile("SCMP_ACT_ALLOW");
  AddRule(&s, {"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO")->set_errnoret(121);
  SeccompProgram p = Compile(s);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // No CAP_SYS_ADMIN needed with no_new_privs. Exit codes say what went wrong.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(10);
    if (!LoadSeccomp(p).ok()) _exit(11);
    if (mkdir("/nonexistent-dir/x", 0700) == 0 || errno != 121) _exit(12);
    if (getpid() <= 0) _exit(13);
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2) _exit(14);
    _exit(0);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("loading without no_new_privs or CAP_SYS_ADMIN says why") {
  if (geteuid() == 0) {
    WARN("running as root (CAP_SYS_ADMIN): the EACCES case is not observable");
    return;
  }
  SeccompProgram p = Compile(Profile("SCMP_ACT_ALLOW"));
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    Status st = LoadSeccomp(p);
    _exit(!st.ok() && Contains(std::string(st.message()), "EACCES") ? 0 : 1);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK(WEXITSTATUS(st) == 0);
}

// ---- users and groups ----

TEST_CASE("passwd and group files parse; junk lines are skipped") {
  std::vector<PasswdEntry> pw = ParsePasswd(
      "root:x:0:0:root:/root:/bin/sh\n"
      "# comment\n"
      "\n"
      "+nis\n"
      "broken:x:notanumber:0::/:/bin/false\n"
      "short:x:1\n"
      "app:x:1000:1001:App:/home/app:/bin/sh\r\n"
      "nohome:x:1002:1002:::/bin/sh");
  REQUIRE(pw.size() == 3);
  CHECK(pw[1].name == "app");
  CHECK(pw[1].uid == 1000);
  CHECK(pw[1].gid == 1001);
  CHECK(pw[1].home == "/home/app");
  CHECK(pw[2].home.empty());
  std::vector<GroupEntry> gr = ParseGroup(
      "root:x:0:\n"
      "wheel:x:10:app,other\n"
      "bad:x:-1:\n"
      "audio:x:29:app");
  REQUIRE(gr.size() == 3);
  CHECK(gr[1].members == std::vector<std::string>{"app", "other"});
  CHECK(gr[2].gid == 29);
}

namespace {

const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "svc:x:2000:2001:Svc:/srv:/bin/false\n";
const char* kGroup =
    "root:x:0:\n"
    "app:x:1000:\n"
    "svcgrp:x:2001:\n"
    "wheel:x:10:app\n"
    "video:x:44:svc,app\n";

ProcessSpec Numeric(uid_t uid, gid_t gid, std::vector<gid_t> extra = {}) {
  ProcessSpec p;
  p.uid = uid;
  p.gid = gid;
  p.additional_gids = std::move(extra);
  return p;
}

ProcessSpec Named(std::string user, std::string group = "", std::vector<std::string> extra = {}) {
  ProcessSpec p;
  p.names = UserNames{std::move(user), std::move(group), std::move(extra)};
  return p;
}

}  // namespace

TEST_CASE("numeric ids are used as given; HOME comes from the passwd entry") {
  StatusOr<Identity> id =
      ResolveIdentity(Numeric(1000, 5, {7}), std::string(kPasswd), std::string(kGroup));
  REQUIRE(id.ok());
  CHECK(id->uid == 1000);
  CHECK(id->gid == 5);
  CHECK(id->additional_gids == std::vector<gid_t>{7});
  CHECK(id->home == "/home/app");
  StatusOr<Identity> nobody =
      ResolveIdentity(Numeric(4242, 4242), std::string(kPasswd), std::nullopt);
  REQUIRE(nobody.ok());
  CHECK(nobody->home == "/");
  StatusOr<Identity> nofile = ResolveIdentity(Numeric(0, 0), std::nullopt, std::nullopt);
  REQUIRE(nofile.ok());
  CHECK(nofile->home == "/");
}

TEST_CASE("a user by name: its uid, primary group, and the groups listing it") {
  StatusOr<Identity> id = ResolveIdentity(Named("app"), std::string(kPasswd), std::string(kGroup));
  REQUIRE(id.ok());
  CHECK(id->uid == 1000);
  CHECK(id->gid == 1000);
  CHECK(id->additional_gids == std::vector<gid_t>{10, 44});
  CHECK(id->home == "/home/app");

  StatusOr<Identity> svc = ResolveIdentity(Named("svc", "wheel", {"30", "video"}),
                                           std::string(kPasswd), std::string(kGroup));
  REQUIRE(svc.ok());
  CHECK(svc->uid == 2000);
  CHECK(svc->gid == 10);
  CHECK(svc->additional_gids == std::vector<gid_t>{30, 44});
  CHECK(svc->home == "/srv");
}

TEST_CASE("a user by number finds its entry too") {
  StatusOr<Identity> id = ResolveIdentity(Named("2000"), std::string(kPasswd), std::string(kGroup));
  REQUIRE(id.ok());
  CHECK(id->gid == 2001);
  CHECK(id->additional_gids == std::vector<gid_t>{44});
  StatusOr<Identity> none =
      ResolveIdentity(Named("3000", "3001"), std::string(kPasswd), std::nullopt);
  REQUIRE(none.ok());
  CHECK(none->uid == 3000);
  CHECK(none->gid == 3001);
  CHECK(none->home == "/");
}

TEST_CASE("unknown names are errors that say which") {
  StatusOr<Identity> u = ResolveIdentity(Named("ghost"), std::string(kPasswd), std::string(kGroup));
  REQUIRE(!u.ok());
  CHECK(Contains(std::string(u.status().message()), "\"ghost\": no such user"));
  StatusOr<Identity> g =
      ResolveIdentity(Named("app", "nogroup"), std::string(kPasswd), std::string(kGroup));
  REQUIRE(!g.ok());
  CHECK(Contains(std::string(g.status().message()), "\"nogroup\": no such group"));
  StatusOr<Identity> nf = ResolveIdentity(Named("app"), std::nullopt, std::nullopt);
  REQUIRE(!nf.ok());
  CHECK(Contains(std::string(nf.status().message()), "no /etc/passwd"));
  StatusOr<Identity> ng =
      ResolveIdentity(Named("app", "wheel"), std::string(kPasswd), std::nullopt);
  REQUIRE(!ng.ok());
  CHECK(Contains(std::string(ng.status().message()), "no /etc/group"));
}

TEST_CASE("string user names are validated") {
  CHECK(ValidateUserNames({"app", "", {}}).ok());
  CHECK(ValidateUserNames({"1000", "1000", {"10", "video"}}).ok());
  CHECK(!ValidateUserNames({"", "", {}}).ok());
  CHECK(!ValidateUserNames({"a:b", "", {}}).ok());
  CHECK(!ValidateUserNames({"app", "", {""}}).ok());
  CHECK(!ValidateUserNames({std::string("a\0b", 3), "", {}}).ok());
}
