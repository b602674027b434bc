#include "runtime/device_filter.h"

#include <cstring>

namespace kata {
namespace {

// Registers the program uses: r1 = ctx on entry (then scratch), r2 = device type,
// r3 = accesses still undecided, r4 = major, r5 = minor, r0 = verdict.
constexpr uint8_t R0 = BPF_REG_0, R1 = BPF_REG_1, R2 = BPF_REG_2, R3 = BPF_REG_3, R4 = BPF_REG_4,
                  R5 = BPF_REG_5;

struct bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  struct bpf_insn i;
  std::memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

struct bpf_insn LoadCtxWord(uint8_t dst, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, R1, off, 0);
}
struct bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
struct bpf_insn Mov32Reg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
struct bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
struct bpf_insn JmpImm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm);  // offset patched later
}
struct bpf_insn Exit() {
  return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

int32_t DevType(char t) { return t == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR; }

bool Matches(const DeviceRule& r, char type, uint32_t major, uint32_t minor) {
  if (r.type != 'a' && r.type != type) return false;
  if (r.major >= 0 && static_cast<uint32_t>(r.major) != major) return false;
  if (r.minor >= 0 && static_cast<uint32_t>(r.minor) != minor) return false;
  return true;
}

bool MatchesEverything(const DeviceRule& r) {
  return r.type == 'a' && r.major < 0 && r.minor < 0 && r.access == kDevAccessAll;
}

DeviceRule Allow(char type, int64_t major, int64_t minor, uint32_t access = kDevAccessAll) {
  return DeviceRule{true, type, major, minor, access};
}

}  // namespace

StatusOr<uint32_t> ParseDeviceAccess(std::string_view access) {
  if (access.empty()) return kDevAccessAll;
  uint32_t bits = 0;
  for (char c : access) {
    switch (c) {
      case 'r':
        bits |= kDevAccessRead;
        break;
      case 'w':
        bits |= kDevAccessWrite;
        break;
      case 'm':
        bits |= kDevAccessMknod;
        break;
      default:
        return absl::InvalidArgumentError(
            StrCat("access \"", access, "\": '", c, "' is not one of r, w, m"));
    }
  }
  return bits;
}

std::string DeviceRuleText(const DeviceRule& r) {
  std::string s = StrCat(r.allow ? "allow " : "deny ", r.type, ' ');
  s += r.major < 0 ? std::string("*") : std::to_string(r.major);
  s += ':';
  s += r.minor < 0 ? std::string("*") : std::to_string(r.minor);
  s += ' ';
  if (r.access & kDevAccessRead) s += 'r';
  if (r.access & kDevAccessWrite) s += 'w';
  if (r.access & kDevAccessMknod) s += 'm';
  return s;
}

std::vector<DeviceRule> DefaultDeviceRules(const std::vector<DeviceSpec>& spec_devices) {
  std::vector<DeviceRule> rules = {
      Allow('c', -1, -1, kDevAccessMknod),  // mknod of any node; opening it is another matter
      Allow('b', -1, -1, kDevAccessMknod),
      Allow('c', 1, 3),     // null
      Allow('c', 1, 5),     // zero
      Allow('c', 1, 7),     // full
      Allow('c', 1, 8),     // random
      Allow('c', 1, 9),     // urandom
      Allow('c', 5, 0),     // tty
      Allow('c', 5, 1),     // console
      Allow('c', 5, 2),     // ptmx
      Allow('c', 136, -1),  // pts/N
      Allow('c', 10, 229),  // fuse
  };
  for (const DeviceSpec& d : spec_devices) {
    if (d.type == 'p') continue;  // a fifo is no device
    rules.push_back(Allow(d.type == 'b' ? 'b' : 'c', d.major, d.minor));
  }
  return rules;
}

StatusOr<std::vector<struct bpf_insn>> CompileDeviceFilter(const std::vector<DeviceRule>& rules) {
  if (rules.size() > kMaxDeviceRules) {
    return absl::InvalidArgumentError(
        StrCat(rules.size(), " device rules: at most ", kMaxDeviceRules, " are supported"));
  }
  enum class Target { kNext, kDeny, kAllow };
  struct Fixup {
    size_t at;
    Target to;
  };
  std::vector<struct bpf_insn> p = {
      LoadCtxWord(R2, offsetof(struct bpf_cgroup_dev_ctx, access_type)),
      Alu32Imm(BPF_AND, R2, 0xffff),
      LoadCtxWord(R3, offsetof(struct bpf_cgroup_dev_ctx, access_type)),
      Alu32Imm(BPF_RSH, R3, 16),
      LoadCtxWord(R4, offsetof(struct bpf_cgroup_dev_ctx, major)),
      LoadCtxWord(R5, offsetof(struct bpf_cgroup_dev_ctx, minor)),
  };
  std::vector<Fixup> far;  // jumps to the verdict blocks, patched at the end
  bool terminated = false;
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRule& r = *it;
    if (r.access == 0) continue;  // names no access: decides nothing
    if (MatchesEverything(r)) {
      p.push_back(Mov64Imm(R0, r.allow ? 1 : 0));
      p.push_back(Exit());
      terminated = true;
      break;
    }
    std::vector<size_t> to_next;
    if (r.type != 'a') {
      to_next.push_back(p.size());
      p.push_back(JmpImm(BPF_JNE, R2, DevType(r.type)));
    }
    if (r.major >= 0) {
      to_next.push_back(p.size());
      p.push_back(JmpImm(BPF_JNE, R4, static_cast<int32_t>(r.major)));
    }
    if (r.minor >= 0) {
      to_next.push_back(p.size());
      p.push_back(JmpImm(BPF_JNE, R5, static_cast<int32_t>(r.minor)));
    }
    if (r.allow) {
      // These accesses are allowed; allow once none is left undecided.
      p.push_back(Alu32Imm(BPF_AND, R3, static_cast<int32_t>(~r.access & kDevAccessAll)));
      far.push_back({p.size(), Target::kAllow});
      p.push_back(JmpImm(BPF_JEQ, R3, 0));
    } else {
      // Deny if any access still undecided is one of these.
      p.push_back(Mov32Reg(R1, R3));
      p.push_back(Alu32Imm(BPF_AND, R1, static_cast<int32_t>(r.access)));
      far.push_back({p.size(), Target::kDeny});
      p.push_back(JmpImm(BPF_JNE, R1, 0));
    }
    for (size_t j : to_next) p[j].off = static_cast<int16_t>(p.size() - j - 1);
  }
  bool want_deny = !terminated, want_allow = false;
  for (const Fixup& f : far) {
    if (f.to == Target::kDeny) want_deny = true;
    if (f.to == Target::kAllow) want_allow = true;
  }
  // Undecided at the end (or a deny rule matched): deny. Blocks nothing jumps to or falls
  // into are left out: the verifier refuses unreachable instructions.
  size_t deny_at = p.size();
  if (want_deny) {
    p.push_back(Mov64Imm(R0, 0));
    p.push_back(Exit());
  }
  size_t allow_at = p.size();
  if (want_allow) {
    p.push_back(Mov64Imm(R0, 1));
    p.push_back(Exit());
  }
  for (const Fixup& f : far) {
    size_t target = f.to == Target::kDeny ? deny_at : allow_at;
    p[f.at].off = static_cast<int16_t>(target - f.at - 1);
  }
  return p;
}

bool DeviceAllowed(const std::vector<DeviceRule>& rules, char type, uint32_t major, uint32_t minor,
                   uint32_t access) {
  if (access == 0) return false;
  for (uint32_t bit = 1; bit <= kDevAccessAll; bit <<= 1) {
    if (!(access & bit)) continue;
    bool allowed = false;
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
      if ((it->access & bit) && Matches(*it, type, major, minor)) {
        allowed = it->allow;
        break;
      }
    }
    if (!allowed) return false;
  }
  return true;
}

}  // namespace kata
