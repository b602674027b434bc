// The device rule compiler: exact instruction sequences for small rule sets, and the
// compiled programs run through a small interpreter of the instructions it emits,
// checked against the rules' meaning (last match wins, per access) on many random sets.
#include <catch2/catch.hpp>

#include <random>

#include "runtime/device_filter.h"

using namespace kata;

namespace {

// Runs a program on one request; only the instructions the compiler emits are known.
int Run(const std::vector<struct bpf_insn>& p, uint32_t type, uint32_t access, uint32_t major,
        uint32_t minor) {
  const uint32_t ctx[3] = {access << 16 | type, major, minor};
  uint64_t r[11] = {};
  size_t pc = 0;
  for (int steps = 0; steps < 100000; steps++) {
    REQUIRE(pc < p.size());
    const struct bpf_insn& i = p[pc++];
    uint64_t& dst = r[i.dst_reg];
    auto imm = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        REQUIRE(i.src_reg == BPF_REG_1);
        REQUIRE(i.off % 4 == 0);
        REQUIRE(i.off / 4 < 3);
        dst = ctx[i.off / 4];
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        dst = static_cast<uint32_t>(dst & imm);
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        dst = static_cast<uint32_t>(dst) >> i.imm;
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        dst = static_cast<uint32_t>(r[i.src_reg]);
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        dst = imm;
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (dst != imm) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (dst == imm) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT:
        return static_cast<int>(r[0]);
      default:
        FAIL("unexpected opcode " << int(i.code));
    }
    REQUIRE(pc <= p.size());
  }
  FAIL("the program did not end");
  return -1;
}

std::string Hex(const std::vector<struct bpf_insn>& p) {
  std::string s;
  for (const auto& i : p) {
    char b[64];
    snprintf(b, sizeof b, "%02x %d %d %d %d\n", i.code, i.dst_reg, i.src_reg, i.off, i.imm);
    s += b;
  }
  return s;
}

// Every instruction is reachable (the verifier refuses a program with dead code).
void CheckReachable(const std::vector<struct bpf_insn>& p) {
  std::vector<bool> seen(p.size());
  std::vector<size_t> todo = {0};
  while (!todo.empty()) {
    size_t pc = todo.back();
    todo.pop_back();
    if (pc >= p.size() || seen[pc]) continue;
    seen[pc] = true;
    const auto& i = p[pc];
    if (i.code == (BPF_JMP | BPF_EXIT)) continue;
    todo.push_back(pc + 1);
    if ((i.code & 0x07) == BPF_JMP) todo.push_back(pc + 1 + i.off);
  }
  for (size_t k = 0; k < p.size(); k++) {
    INFO("instruction " << k << "\n" << Hex(p));
    CHECK(seen[k]);
  }
}

constexpr uint32_t kBlock = BPF_DEVCG_DEV_BLOCK, kChar = BPF_DEVCG_DEV_CHAR;
constexpr uint32_t R = kDevAccessRead, W = kDevAccessWrite, M = kDevAccessMknod;

std::vector<struct bpf_insn> Compile(const std::vector<DeviceRule>& rules) {
  auto p = CompileDeviceFilter(rules);
  REQUIRE(p.ok());
  CheckReachable(*p);
  return *p;
}

}  // namespace

TEST_CASE("deny all, allow c 1:3 rwm: the exact program") {
  auto p = Compile({{false, 'a', -1, -1, kDevAccessAll}, {true, 'c', 1, 3, kDevAccessAll}});
  // prologue: r2 = type, r3 = access, r4 = major, r5 = minor
  // allow c 1:3 rwm: if r2 != 2 || r4 != 1 || r5 != 3 skip; r3 &= 0; if r3 == 0 allow
  // deny a *:* rwm: matches everything: return 0
  CHECK(Hex(p) ==
        "61 2 1 0 0\n"
        "54 2 0 0 65535\n"
        "61 3 1 0 0\n"
        "74 3 0 0 16\n"
        "61 4 1 4 0\n"
        "61 5 1 8 0\n"
        "55 2 0 4 2\n"
        "55 4 0 3 1\n"
        "55 5 0 2 3\n"
        "54 3 0 0 0\n"
        "15 3 0 2 0\n"
        "b7 0 0 0 0\n"
        "95 0 0 0 0\n"
        "b7 0 0 0 1\n"
        "95 0 0 0 0\n");
  CHECK(Run(p, kChar, R | W, 1, 3) == 1);
  CHECK(Run(p, kChar, M, 1, 3) == 1);
  CHECK(Run(p, kChar, R, 1, 5) == 0);
  CHECK(Run(p, kBlock, R, 1, 3) == 0);
}

TEST_CASE("no rules: everything is denied") {
  auto p = Compile({});
  CHECK(p.size() == 8);  // prologue, r0 = 0, exit
  CHECK(Run(p, kChar, R, 1, 3) == 0);
}

TEST_CASE("allow all: one verdict, no dead code") {
  auto p = Compile({{false, 'c', 1, 3, kDevAccessAll}, {true, 'a', -1, -1, kDevAccessAll}});
  CHECK(p.size() == 8);
  CHECK(Run(p, kChar, R, 1, 3) == 1);
  CHECK(Run(p, kBlock, R | W, 254, 0) == 1);
}

TEST_CASE("a deny rule with a partial access: the exact program") {
  // allow c 1:* rwm, then deny c 1:3 w
  auto p = Compile({{true, 'c', 1, -1, kDevAccessAll}, {false, 'c', 1, 3, W}});
  CHECK(Hex(p) ==
        "61 2 1 0 0\n"
        "54 2 0 0 65535\n"
        "61 3 1 0 0\n"
        "74 3 0 0 16\n"
        "61 4 1 4 0\n"
        "61 5 1 8 0\n"
        // deny c 1:3 w: w1 = w3; w1 &= 4; if r1 != 0 deny
        "55 2 0 5 2\n"
        "55 4 0 4 1\n"
        "55 5 0 3 3\n"
        "bc 1 3 0 0\n"
        "54 1 0 0 4\n"
        "55 1 0 4 0\n"
        // allow c 1:* rwm
        "55 2 0 3 2\n"
        "55 4 0 2 1\n"
        "54 3 0 0 0\n"
        "15 3 0 2 0\n"
        "b7 0 0 0 0\n"
        "95 0 0 0 0\n"
        "b7 0 0 0 1\n"
        "95 0 0 0 0\n");
  CHECK(Run(p, kChar, R, 1, 3) == 1);
  CHECK(Run(p, kChar, R | W, 1, 3) == 0);  // the write part is denied
  CHECK(Run(p, kChar, R | W, 1, 5) == 1);
}

TEST_CASE("accesses granted by separate rules add up") {
  auto rules = std::vector<DeviceRule>{{true, 'c', 1, 3, R}, {true, 'c', 1, 3, W}};
  auto p = Compile(rules);
  CHECK(Run(p, kChar, R | W, 1, 3) == 1);
  CHECK(Run(p, kChar, M, 1, 3) == 0);
  CHECK(DeviceAllowed(rules, 'c', 1, 3, R | W));
}

TEST_CASE("the default rules: mknod of anything, open of the usual devices only") {
  DeviceSpec vdb;
  vdb.path = "/dev/vdb";
  vdb.type = 'b';
  vdb.major = 254;
  vdb.minor = 16;
  auto rules = DefaultDeviceRules({vdb});
  auto p = Compile(rules);
  struct Case {
    uint32_t type, access, major, minor;
    int want;
  } cases[] = {
      {kChar, R | W, 1, 3, 1},                           // null
      {kChar, R, 1, 5, 1},                               // zero
      {kChar, R, 1, 9, 1},                               // urandom
      {kChar, R | W, 5, 0, 1},                           // tty
      {kChar, R | W, 5, 2, 1},                           // ptmx
      {kChar, R | W, 136, 7, 1},                         // pts/7
      {kChar, R | W, 10, 229, 1},                        // fuse
      {kBlock, R | W, 254, 16, 1},                       // the spec's own device
      {kBlock, M, 254, 0, 1},                            // mknod of a guest disk: allowed ...
      {kBlock, R, 254, 0, 0},                            // ... opening it: denied
      {kBlock, W, 8, 0, 0},        {kChar, R, 1, 1, 0},  // /dev/mem
      {kChar, R | W, 10, 200, 0},                        // tun: not in the default list
  };
  for (const auto& c : cases) {
    INFO(c.type << " " << c.access << " " << c.major << ":" << c.minor);
    CHECK(Run(p, c.type, c.access, c.major, c.minor) == c.want);
    CHECK(DeviceAllowed(rules, c.type == kBlock ? 'b' : 'c', c.major, c.minor, c.access) ==
          (c.want == 1));
  }
}

TEST_CASE("compiled programs agree with the rules on random rule sets") {
  std::mt19937 rng(12345);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int round = 0; round < 400; round++) {
    std::vector<DeviceRule> rules;
    int n = pick(8);
    for (int k = 0; k < n; k++) {
      DeviceRule r;
      r.allow = pick(2) == 1;
      r.type = "abc"[pick(3)];
      r.major = pick(3) == 0 ? -1 : pick(3);
      r.minor = pick(3) == 0 ? -1 : pick(3);
      r.access = static_cast<uint32_t>(pick(8));
      rules.push_back(r);
    }
    auto p = Compile(rules);
    std::string text;
    for (const auto& r : rules) text += DeviceRuleText(r) + "\n";
    INFO(text);
    for (uint32_t type : {kBlock, kChar}) {
      for (uint32_t major = 0; major < 3; major++) {
        for (uint32_t minor = 0; minor < 3; minor++) {
          for (uint32_t access = 1; access <= kDevAccessAll; access++) {
            bool want = DeviceAllowed(rules, type == kBlock ? 'b' : 'c', major, minor, access);
            INFO("round " << round << " request " << type << " " << major << ":" << minor << " "
                          << access);
            REQUIRE(Run(p, type, access, major, minor) == (want ? 1 : 0));
          }
        }
      }
    }
  }
}

TEST_CASE("rule text and access letters") {
  CHECK(DeviceRuleText({true, 'c', 1, 3, kDevAccessAll}) == "allow c 1:3 rwm");
  CHECK(DeviceRuleText({false, 'a', -1, -1, R}) == "deny a *:* r");
  CHECK(*ParseDeviceAccess("") == kDevAccessAll);
  CHECK(*ParseDeviceAccess("mr") == (M | R));
  CHECK_FALSE(ParseDeviceAccess("x").ok());
}

TEST_CASE("too many rules are refused") {
  std::vector<DeviceRule> rules(kMaxDeviceRules + 1, DeviceRule{true, 'c', 1, 3, R});
  CHECK(CompileDeviceFilter(rules).status().code() == absl::StatusCode::kInvalidArgument);
}
