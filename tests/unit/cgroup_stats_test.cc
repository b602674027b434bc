// StatsContainer's CgroupStats from cgroup v2 files (text as the 6.1 guest kernel writes it).
#include <catch2/catch.hpp>

#include <limits>

#include "runtime/cgroup_stats.h"

using namespace kata;

namespace {

const std::map<std::string, std::string> kFiles = {
    {"cpu.stat",
     "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 10\n"
     "nr_throttled 3\nthrottled_usec 5000\n"},
    {"memory.current", "52690944\n"},
    {"memory.peak", "60000256\n"},
    {"memory.max", "max\n"},
    {"memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n"},
    {"memory.swap.current", "0\n"},
    {"memory.swap.max", "33554432\n"},
    {"memory.stat", "anon 52428800\nfile 4096\nkernel 262144\nkernel_stack 16384\n"},
    {"pids.current", "16\n"},
    {"pids.max", "16\n"},
    {"io.stat",
     "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
     "254:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"},
    {"hugetlb.2MB.current", "2097152\n"},
    {"hugetlb.2MB.events", "max 2\n"},
};

CgroupFileReader Reader(const std::map<std::string, std::string>& files) {
  return [&files](const std::string& f) -> std::optional<std::string> {
    auto it = files.find(f);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("cgroup v2 files map onto CgroupStats") {
  grpc::CgroupStats s;
  FillCgroupStats(Reader(kFiles), {"2MB", "1GB"}, &s);
  CHECK(s.cpu_stats().cpu_usage().total_usage() == 123456000);
  CHECK(s.cpu_stats().cpu_usage().usage_in_usermode() == 100000000);
  CHECK(s.cpu_stats().cpu_usage().usage_in_kernelmode() == 23456000);
  CHECK(s.cpu_stats().cpu_usage().percpu_usage_size() == 0);
  CHECK(s.cpu_stats().throttling_data().periods() == 10);
  CHECK(s.cpu_stats().throttling_data().throttled_periods() == 3);
  CHECK(s.cpu_stats().throttling_data().throttled_time() == 5000000);

  const auto& m = s.memory_stats();
  CHECK(m.usage().usage() == 52690944);
  CHECK(m.usage().max_usage() == 60000256);
  CHECK(m.usage().limit() == std::numeric_limits<uint64_t>::max());
  CHECK(m.usage().failcnt() == 7);
  CHECK(m.swap_usage().limit() == 33554432);
  CHECK(m.cache() == 4096);
  CHECK(m.kernel_usage().usage() == 262144);
  CHECK(m.use_hierarchy());
  CHECK(m.stats().at("anon") == 52428800);

  CHECK(s.pids_stats().current() == 16);
  CHECK(s.pids_stats().limit() == 16);

  const auto& b = s.blkio_stats();
  REQUIRE(b.io_service_bytes_recursive_size() == 4);
  CHECK(b.io_service_bytes_recursive(0).major() == 254);
  CHECK(b.io_service_bytes_recursive(0).op() == "Read");
  CHECK(b.io_service_bytes_recursive(0).value() == 4096);
  CHECK(b.io_service_bytes_recursive(1).op() == "Write");
  CHECK(b.io_service_bytes_recursive(1).value() == 8192);
  CHECK(b.io_service_bytes_recursive(2).minor() == 16);
  REQUIRE(b.io_serviced_recursive_size() == 4);
  CHECK(b.io_serviced_recursive(1).value() == 2);

  REQUIRE(s.hugetlb_stats().count("2MB") == 1);
  CHECK(s.hugetlb_stats().at("2MB").usage() == 2097152);
  CHECK(s.hugetlb_stats().at("2MB").failcnt() == 2);
  CHECK(s.hugetlb_stats().count("1GB") == 0);
}

TEST_CASE("missing controllers leave their part of CgroupStats empty; pids max is 0") {
  std::map<std::string, std::string> files = {{"pids.current", "3\n"}, {"pids.max", "max\n"}};
  grpc::CgroupStats s;
  FillCgroupStats(Reader(files), {}, &s);
  CHECK_FALSE(s.has_cpu_stats());
  CHECK_FALSE(s.has_memory_stats());
  CHECK(s.pids_stats().current() == 3);
  CHECK(s.pids_stats().limit() == 0);
}

TEST_CASE("flat keyed and io.stat parsing") {
  auto m = ParseFlatKeyed("a 1\nbad\nb x\nc 3");
  CHECK(m.size() == 2);
  CHECK(m["c"] == 3);
  auto io = ParseIoStat("8:0 rbytes=1 wbytes=2\nnot a line\n");
  REQUIRE(io.size() == 1);
  CHECK(io[0].values["wbytes"] == 2);
  CHECK(*ParseLimitValue("max\n") == std::numeric_limits<uint64_t>::max());
  CHECK(*ParseLimitValue("42\n") == 42);
  CHECK_FALSE(ParseLimitValue("x"));
}
