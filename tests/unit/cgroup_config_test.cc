// OCI resources -> cgroup v2 file values, and cgroupsPath -> the container's cgroup.
#include <catch2/catch.hpp>

#include "runtime/cgroup_config.h"

using namespace kata;

namespace {

std::map<std::string, std::string> Files(const std::vector<CgroupWrite>& w) {
  std::map<std::string, std::string> m;
  for (const auto& x : w) {
    if (m.count(x.file)) {
      m[x.file] += "\n" + x.value;
    } else {
      m[x.file] = x.value;
    }
  }
  return m;
}

std::vector<CgroupWrite> Writes(const grpc::LinuxResources& r) {
  auto parsed = ParseResources(r, "linux.resources");
  REQUIRE(parsed.ok());
  auto w = CgroupWrites(*parsed);
  REQUIRE(w.ok());
  return *w;
}

}  // namespace

TEST_CASE("cpu shares convert to cpu.weight with runc's formula") {
  CHECK(CpuSharesToWeight(2) == 1);
  CHECK(CpuSharesToWeight(1024) == 39);
  CHECK(CpuSharesToWeight(262144) == 10000);
  // Outside the cgroup v1 range, clamped as the v1 kernel did.
  CHECK(CpuSharesToWeight(1) == 1);
  CHECK(CpuSharesToWeight(1u << 30) == 10000);
}

TEST_CASE("blkio weight converts to io.weight") {
  CHECK(BlkioWeightToIoWeight(10) == 1);
  CHECK(BlkioWeightToIoWeight(500) == 1 + (490 * 9999) / 990);
  CHECK(BlkioWeightToIoWeight(1000) == 10000);
}

TEST_CASE("memory.swap.max is swap minus limit; -1 is max") {
  CHECK(*SwapToCgroupV2(128 << 20, 64 << 20) == 64 << 20);
  CHECK(*SwapToCgroupV2(64 << 20, 64 << 20) == 0);  // no swap at all
  CHECK(*SwapToCgroupV2(-1, 64 << 20) == -1);
  CHECK(*SwapToCgroupV2(0, 64 << 20) == 0);  // not given
  CHECK(*SwapToCgroupV2(0, -1) == -1);       // unlimited memory: swap too
  CHECK(SwapToCgroupV2(32 << 20, 64 << 20).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(SwapToCgroupV2(32 << 20, 0).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("quota and period become cpu.max") {
  CHECK(CpuMaxValue(50000, 100000) == "50000 100000");
  CHECK(CpuMaxValue(-1, 100000) == "max 100000");
  CHECK(CpuMaxValue(20000, std::nullopt) == "20000 100000");
  CHECK(CpuMaxValue(std::nullopt, 50000) == "max 50000");
  // An update of the period alone keeps the quota in force, and the other way round.
  CHECK(CpuMaxValue(std::nullopt, 50000, "30000 100000\n") == "30000 50000");
  CHECK(CpuMaxValue(40000, std::nullopt, "30000 200000\n") == "40000 200000");
}

TEST_CASE("a full set of resources converts to the cgroup v2 files") {
  grpc::LinuxResources r;
  r.mutable_memory()->set_limit(64 << 20);
  r.mutable_memory()->set_reservation(32 << 20);
  r.mutable_memory()->set_swap(96 << 20);
  r.mutable_cpu()->set_shares(1024);
  r.mutable_cpu()->set_quota(50000);
  r.mutable_cpu()->set_period(100000);
  r.mutable_cpu()->set_cpus("0");
  r.mutable_cpu()->set_mems("0");
  r.mutable_pids()->set_limit(16);
  r.mutable_blockio()->set_weight(500);
  auto* wd = r.mutable_blockio()->add_weightdevice();
  wd->set_major(254);
  wd->set_minor(0);
  wd->set_weight(1000);
  auto* rb = r.mutable_blockio()->add_throttlereadbpsdevice();
  rb->set_major(254);
  rb->set_minor(0);
  rb->set_rate(1048576);
  auto* wi = r.mutable_blockio()->add_throttlewriteiopsdevice();
  wi->set_major(254);
  wi->set_minor(0);
  wi->set_rate(100);
  auto* ri = r.mutable_blockio()->add_throttlereadiopsdevice();
  ri->set_major(8);
  ri->set_minor(16);
  ri->set_rate(0);  // explicitly unlimited
  auto* h = r.add_hugepagelimits();
  h->set_pagesize("2MB");
  h->set_limit(4 << 20);

  std::vector<CgroupWrite> w = Writes(r);
  auto f = Files(w);
  CHECK(f["memory.max"] == "67108864");
  CHECK(f["memory.low"] == "33554432");
  CHECK(f["memory.swap.max"] == "33554432");
  CHECK(f["cpu.weight"] == "39");
  CHECK(f["cpu.max"] == "50000 100000");
  CHECK(f["cpuset.cpus"] == "0");
  CHECK(f["cpuset.mems"] == "0");
  CHECK(f["pids.max"] == "16");
  CHECK(f["io.weight"] == StrCat("default ", BlkioWeightToIoWeight(500), "\n254:0 10000"));
  CHECK(f["io.max"] == "8:16 riops=max\n254:0 rbps=1048576 wiops=100");
  CHECK(f["hugetlb.2MB.max"] == "4194304");
  // memory before cpu: an update that fails on cpu.max has memory.max to restore.
  CHECK(w.front().file == "memory.max");
}

TEST_CASE("zero means not given; -1 means no limit") {
  grpc::LinuxResources r;
  r.mutable_memory()->set_limit(-1);
  r.mutable_cpu()->set_quota(-1);
  r.mutable_pids()->set_limit(-1);
  auto f = Files(Writes(r));
  CHECK(f["memory.max"] == "max");
  CHECK(f["memory.swap.max"] == "max");
  CHECK(f["cpu.max"] == "max 100000");
  CHECK(f["pids.max"] == "max");
  CHECK(f.size() == 4);

  grpc::LinuxResources none;
  none.mutable_memory();
  none.mutable_cpu();
  none.mutable_pids();
  none.mutable_blockio();
  CHECK(Writes(none).empty());
}

TEST_CASE("invalid resources are INVALID_ARGUMENT naming the field") {
  auto err = [](const grpc::LinuxResources& r) {
    auto p = ParseResources(r, "linux.resources");
    if (!p.ok()) return std::string(p.status().message());
    auto w = CgroupWrites(*p);
    return w.ok() ? std::string() : std::string(w.status().message());
  };
  grpc::LinuxResources r;
  r.mutable_memory()->set_limit(-2);
  CHECK(err(r).find("linux.resources.Memory.Limit") == 0);
  r.Clear();
  r.mutable_cpu()->set_cpus("0-");
  CHECK(err(r).find("linux.resources.CPU.Cpus") == 0);
  r.Clear();
  r.mutable_cpu()->set_period(10);
  CHECK(err(r).find("linux.resources.CPU.Period") == 0);
  r.Clear();
  r.mutable_blockio()->set_weight(5);
  CHECK(err(r).find("linux.resources.BlockIO.Weight") == 0);
  r.Clear();
  r.add_hugepagelimits()->set_pagesize("2M");
  CHECK(err(r).find("linux.resources.HugepageLimits[0].Pagesize") == 0);
  r.Clear();
  r.mutable_memory()->set_limit(64 << 20);
  r.mutable_memory()->set_swap(32 << 20);
  CHECK(err(r).find("Memory.Swap") == 0);
  r.Clear();
  auto* d = r.add_devices();
  d->set_type("x");
  CHECK(err(r).find("linux.resources.Devices[0].Type") == 0);
  r.Clear();
  d = r.add_devices();
  d->set_access("rwx");
  CHECK(err(r).find("linux.resources.Devices[0].Access") == 0);
}

TEST_CASE("cpuset lists are validated") {
  CHECK(ValidateCpuList("0").ok());
  CHECK(ValidateCpuList("0-3,5,7-8").ok());
  CHECK_FALSE(ValidateCpuList("").ok());
  CHECK_FALSE(ValidateCpuList("3-1").ok());
  CHECK_FALSE(ValidateCpuList("0,").ok());
  CHECK_FALSE(ValidateCpuList("a").ok());
  CHECK_FALSE(ValidateCpuList("0 1").ok());
}

TEST_CASE("device rules of the API: major/minor above 0 or any, access letters") {
  grpc::LinuxResources r;
  auto* deny = r.add_devices();
  deny->set_allow(false);
  deny->set_access("rwm");
  auto* null = r.add_devices();
  null->set_allow(true);
  null->set_type("c");
  null->set_major(1);
  null->set_minor(3);
  null->set_access("rw");
  auto p = ParseResources(r, "r");
  REQUIRE(p.ok());
  REQUIRE(p->devices);
  REQUIRE(p->devices->size() == 2);
  CHECK((*p->devices)[0] == DeviceRule{false, 'a', -1, -1, kDevAccessAll});
  CHECK((*p->devices)[1] == DeviceRule{true, 'c', 1, 3, kDevAccessRead | kDevAccessWrite});
  // No device rules at all: none given (the defaults apply).
  grpc::LinuxResources empty;
  CHECK_FALSE(ParseResources(empty, "r")->devices);
}

TEST_CASE("unified entries are validated and win over converted values") {
  CHECK(ValidateUnifiedName("memory.oom.group").ok());
  CHECK(ValidateUnifiedName("cpu.idle").ok());
  CHECK_FALSE(ValidateUnifiedName("cgroup.procs").ok());
  CHECK_FALSE(ValidateUnifiedName("cgroup.subtree_control").ok());
  CHECK_FALSE(ValidateUnifiedName("cgroup.kill").ok());
  CHECK_FALSE(ValidateUnifiedName("../memory.max").ok());
  CHECK_FALSE(ValidateUnifiedName("memory").ok());
  CHECK_FALSE(ValidateUnifiedName("net_cls.classid").ok());
  CHECK_FALSE(ValidateUnifiedName("memory.max/x").ok());

  grpc::Spec spec;
  (*spec.mutable_annotations())[std::string(kUnifiedAnnotationPrefix) + "memory.max"] = "1048576";
  (*spec.mutable_annotations())[std::string(kUnifiedAnnotationPrefix) + "memory.oom.group"] = "1";
  (*spec.mutable_annotations())["other"] = "x";
  CgroupResources r;
  r.memory_limit = 64 << 20;
  REQUIRE(ParseUnifiedAnnotations(spec.annotations(), &r).ok());
  auto f = Files(*CgroupWrites(r));
  CHECK(f["memory.max"] == "1048576");
  CHECK(f["memory.oom.group"] == "1");

  grpc::Spec bad;
  (*bad.mutable_annotations())[std::string(kUnifiedAnnotationPrefix) + "cgroup.procs"] = "1";
  CgroupResources r2;
  auto st = ParseUnifiedAnnotations(bad.annotations(), &r2);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("cgroupsPath: plain, systemd form, default") {
  CHECK(*CgroupRelativePath("", "c1") == "c1");
  CHECK(*CgroupRelativePath("/kubepods/pod1/c1", "c1") == "kubepods/pod1/c1");
  CHECK(*CgroupRelativePath("kubepods//pod1/", "c1") == "kubepods/pod1");
  CHECK(*CgroupRelativePath("system.slice:kata_agent:c1", "c1") ==
        "system.slice/kata_agent-c1.scope");
  CHECK(*CgroupRelativePath("kubepods-besteffort-pod12.slice:cri-containerd:abc", "x") ==
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
        "cri-containerd-abc.scope");
  CHECK(*CgroupRelativePath(":kata:c1", "c1") == "system.slice/kata-c1.scope");
  CHECK(*CgroupRelativePath("-.slice::c1", "c1") == "c1.scope");
  CHECK(*CgroupRelativePath("machine.slice:p:", "cid") == "machine.slice/p-cid.scope");
  CHECK(*CgroupRelativePath("user.slice:p:sub.slice", "c") == "user.slice/sub.slice");
  for (const char* bad : {"/", "/a/../b", "./a", "a-.slice:p:n", "nodot:p:n"}) {
    INFO(bad);
    CHECK(CgroupRelativePath(bad, "c1").status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("the containers' memory limit keeps a reserve for the kernel and the agent") {
  CHECK(DefaultMemoryReserve(512ull << 20) == 64ull << 20);
  CHECK(DefaultMemoryReserve(2048ull << 20) == 128ull << 20);
  CHECK(DefaultMemoryReserve(64ull << 30) == 256ull << 20);
  CHECK(ContainersMemoryMax(512ull << 20, 64ull << 20) == 448ull << 20);
  CHECK(ContainersMemoryMax(32ull << 20, 64ull << 20) == 16ull << 20);  // never below the floor
  CHECK(*MemTotalFromMeminfo("MemTotal:         503424 kB\nMemFree:  1 kB\n") == 503424ull * 1024);
  CHECK_FALSE(MemTotalFromMeminfo("MemFree: 1 kB\n"));
}
