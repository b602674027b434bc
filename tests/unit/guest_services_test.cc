// Guest services' pure parts: the Prometheus writer and the /proc parsers behind GetMetrics,
// the memory agent's parsers and decisions, and CPU/memory onlining against a fake sysfs
// tree in a temp dir (no root needed).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "guest/diagnostics.h"
#include "guest/hotplug.h"
#include "guest/mem_agent.h"
#include "guest/metrics.h"
#include "util/fs.h"

using namespace kata;

namespace {

struct FakeSys {
  std::string root;
  FakeSys() {
    char tmpl[] = "/tmp/kata-gs-unit-XXXXXX";
    root = mkdtemp(tmpl);
  }
  ~FakeSys() { std::system(("rm -rf '" + root + "'").c_str()); }
  void Put(const std::string& rel, const std::string& content) {
    std::string p = root + "/" + rel;
    REQUIRE(MkdirAll(p.substr(0, p.rfind('/'))).ok());
    REQUIRE(WriteFileString(p, content).ok());
  }
  std::string Get(const std::string& rel) {
    StatusOr<std::string> s = ReadFileString(root + "/" + rel);
    REQUIRE(s.ok());
    return *s;
  }
};

}  // namespace

TEST_CASE("metrics: names", "[metrics]") {
  CHECK(ValidMetricName("kata_agent_rpc_calls_total"));
  CHECK(ValidMetricName("a:b_c"));
  CHECK_FALSE(ValidMetricName("1abc"));
  CHECK_FALSE(ValidMetricName("a-b"));
  CHECK_FALSE(ValidMetricName(""));
  CHECK(ValidLabelName("method"));
  CHECK_FALSE(ValidLabelName("__name"));
  CHECK_FALSE(ValidLabelName("a:b"));
}

TEST_CASE("metrics: writer output and escaping", "[metrics]") {
  MetricsWriter w;
  w.Family("m_total", "counter", "Help with \\ and\nnewline.");
  w.Sample(uint64_t{3}, {{"method", "a\"b\\c\nd"}, {"x", "y"}});
  w.Sample(2.5);
  w.Family("g", "gauge", "G.");
  w.Sample(std::numeric_limits<double>::quiet_NaN());
  CHECK(w.Take() ==
        "# HELP m_total Help with \\\\ and\\nnewline.\n"
        "# TYPE m_total counter\n"
        "m_total{method=\"a\\\"b\\\\c\\nd\",x=\"y\"} 3\n"
        "m_total 2.5\n"
        "# HELP g G.\n"
        "# TYPE g gauge\n"
        "g NaN\n");
}

TEST_CASE("metrics: value formatting round-trips", "[metrics]") {
  CHECK(FormatMetricValue(0) == "0");
  CHECK(FormatMetricValue(-7) == "-7");
  CHECK(FormatMetricValue(1e20) == "1e+20");
  CHECK(FormatMetricValue(INFINITY) == "+Inf");
  CHECK(FormatMetricValue(-INFINITY) == "-Inf");
  for (double v : {0.1, 1.0 / 3, 12345.678, 1e-9}) {
    CHECK(std::strtod(FormatMetricValue(v).c_str(), nullptr) == v);
  }
}

TEST_CASE("metrics: /proc parsers", "[metrics]") {
  CHECK(SplitFields("  a\tbb,, c ", " \t,") == std::vector<std::string_view>{"a", "bb", "c"});
  CHECK(SplitFields(" \t ", " \t").empty());
  std::vector<MeminfoEntry> m =
      ParseMeminfo("MemTotal:        2048 kB\nHugePages_Total:       3\nbogus line\nX: y kB\n");
  REQUIRE(m.size() == 2);
  CHECK(m[0].name == "MemTotal");
  CHECK(m[0].value == 2048 * 1024);
  CHECK(m[0].in_bytes);
  CHECK(m[1].name == "HugePages_Total");
  CHECK(m[1].value == 3);
  CHECK_FALSE(m[1].in_bytes);

  StatusOr<LoadAvg> l = ParseLoadavg("0.50 0.25 1.00 2/123 4567\n");
  REQUIRE(l.ok());
  CHECK(l->avg1 == 0.5);
  CHECK(l->avg15 == 1.0);
  CHECK(l->runnable == 2);
  CHECK(l->tasks == 123);
  CHECK_FALSE(ParseLoadavg("0.5 x").ok());

  // A command name with spaces and a ')' in it.
  std::string stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 17 9 0 0 20 0 7 0 5 0 0";
  StatusOr<ProcStat> s = ParseProcStat(stat);
  REQUIRE(s.ok());
  CHECK(s->utime_ticks == 17);
  CHECK(s->stime_ticks == 9);
  CHECK(s->threads == 7);
  CHECK_FALSE(ParseProcStat("42 (x) S 1").ok());

  StatusOr<uint64_t> rss = ParseStatusKb("Name:\tx\nVmRSSx: 1 kB\nVmRSS:\t  1234 kB\n", "VmRSS");
  REQUIRE(rss.ok());
  CHECK(*rss == 1234 * 1024);
  CHECK(ParseStatusKb("Name: x\n", "VmRSS").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("metrics: the collected exposition of this process", "[metrics]") {
  AgentCounters c;
  c.containers = 2;
  c.rpcs["grpc.AgentService/CreateContainer"] = {5, 1};
  std::string t = CollectMetrics(c);
  CHECK(t.find("\nkata_agent_containers 2\n") != std::string::npos);
  CHECK(t.find("kata_agent_rpc_calls_total{method=\"grpc.AgentService/CreateContainer\"} 5\n") !=
        std::string::npos);
  CHECK(t.find("kata_agent_rpc_errors_total{method=\"grpc.AgentService/CreateContainer\"} 1\n") !=
        std::string::npos);
  CHECK(t.find("kata_guest_meminfo_bytes{field=\"MemTotal\"} ") != std::string::npos);
  // Every line: a comment or "name[{...}] value".
  std::istringstream in(t);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) continue;
    size_t sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    std::string name = line.substr(0, std::min(line.find('{'), sp));
    CHECK(ValidMetricName(name));
  }
}

TEST_CASE("hotplug: CPU list counting", "[hotplug]") {
  CHECK(CountCpuList("0\n") == 1);
  CHECK(CountCpuList("0-3,5,7-8\n") == 7);
  CHECK(CountCpuList("") == 0);
}

TEST_CASE("hotplug: memory blocks and CPUs onlined in a fake sysfs", "[hotplug]") {
  FakeSys s;
  s.Put("memory/block_size_bytes", "8000000\n");
  s.Put("memory/memory0/state", "online\n");
  s.Put("memory/memory32/state", "offline\n");
  s.Put("memory/memory33/state", "offline\n");
  s.Put("cpu/cpu0/topology/x", "");
  s.Put("cpu/cpu1/online", "1\n");
  s.Put("cpu/cpu2/online", "0\n");
  s.Put("cpu/cpu10/online", "0\n");
  s.Put("cpu/cpufreq/online", "0\n");  // not a CPU

  StatusOr<int> mem = OnlineMemoryBlocks(s.root + "/memory");
  REQUIRE(mem.ok());
  CHECK(*mem == 2);
  CHECK(s.Get("memory/memory32/state") == "online");
  CHECK(s.Get("memory/memory0/state") == "online\n");  // untouched

  CallContext ctx;
  StatusOr<int> one = OnlineCpus(ctx, 1, std::chrono::milliseconds(0), s.root + "/cpu");
  REQUIRE(one.ok());
  CHECK(s.Get("cpu/cpu2/online") == "1");
  CHECK(s.Get("cpu/cpu10/online") == "0\n");
  CHECK(s.Get("cpu/cpufreq/online") == "0\n");

  // Two more wanted, one left: DEADLINE_EXCEEDED after the timeout, saying how many.
  StatusOr<int> two = OnlineCpus(ctx, 2, std::chrono::milliseconds(120), s.root + "/cpu");
  REQUIRE(two.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(two.status().message().find("onlined 1 of 2") != std::string::npos);
  CHECK(s.Get("cpu/cpu10/online") == "1");

  // A CPU that appears while the call waits (as a hot-added one does).
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    s.Put("cpu/cpu3/online", "0\n");
  });
  StatusOr<int> waited = OnlineCpus(ctx, 1, std::chrono::milliseconds(5000), s.root + "/cpu");
  later.join();
  REQUIRE(waited.ok());
  CHECK(s.Get("cpu/cpu3/online") == "1");
}

TEST_CASE("hotplug: hot-added memory is waited for, then onlined", "[hotplug]") {
  FakeSys s;
  s.Put("memory/auto_online_blocks", "offline\n");
  s.Put("memory/memory0/state", "online\n");
  std::string dir = s.root + "/memory";
  CallContext ctx;

  // The DIMM's block shows up while the call waits, as after an ACPI notification.
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    s.Put("memory/memory40/state", "offline\n");
  });
  auto t0 = std::chrono::steady_clock::now();
  StatusOr<int> got = OnlineHotAddedMemory(ctx, std::chrono::milliseconds(5000), dir);
  later.join();
  REQUIRE(got.ok());
  CHECK(*got == 1);
  CHECK(s.Get("memory/memory40/state") == "online");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(4000));

  // Nothing hot-added: not an error, 0 after the timeout.
  t0 = std::chrono::steady_clock::now();
  StatusOr<int> none = OnlineHotAddedMemory(ctx, std::chrono::milliseconds(100), dir);
  REQUIRE(none.ok());
  CHECK(*none == 0);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(100));

  // A kernel that onlines new blocks itself is not waited for.
  s.Put("memory/auto_online_blocks", "online_movable\n");
  t0 = std::chrono::steady_clock::now();
  none = OnlineHotAddedMemory(ctx, std::chrono::milliseconds(5000), dir);
  REQUIRE(none.ok());
  CHECK(*none == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(4000));

  // A cancelled call stops waiting and says so.
  s.Put("memory/auto_online_blocks", "offline\n");
  CallContext gone;
  gone.cancel_token().Cancel();
  StatusOr<int> cancelled = OnlineHotAddedMemory(gone, std::chrono::milliseconds(5000), dir);
  CHECK(cancelled.status().code() == absl::StatusCode::kCancelled);
}

TEST_CASE("hotplug: probe validation", "[hotplug]") {
  FakeSys s;
  s.Put("memory/block_size_bytes", "8000000\n");
  std::string dir = s.root + "/memory";
  CHECK(MemoryBlockSize(dir).value() == 0x8000000);
  CHECK(ProbeMemory({0x100000000}, dir).code() == absl::StatusCode::kFailedPrecondition);
  s.Put("memory/probe", "");
  CHECK(MemoryProbeSupported(dir));
  Status bad = ProbeMemory({0x100000000, 0x100001000}, dir);
  CHECK(bad.code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad.message().find("0x100001000") != absl::string_view::npos);
  CHECK(s.Get("memory/probe").empty());  // nothing written when one address is bad
  REQUIRE(ProbeMemory({0x108000000}, dir).ok());
  CHECK(s.Get("memory/probe") == "0x108000000");
  CHECK(ProbeMemory({}, dir).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("mem agent: buddyinfo and PSI", "[memagent]") {
  std::string buddy =
      "Node 0, zone      DMA      1      2      0      0      0      0      0      0      1      1 "
      "     3\n"
      "Node 0, zone    DMA32     10      0      4      0      0      0      0      0      0      0 "
      "     0\n";
  // order < 2: 1*1 + 2*2 + 10*1 = 15; order < 3 adds 4 * 4 = 16.
  CHECK(FragmentedFreePages(buddy, 2).value() == 15);
  CHECK(FragmentedFreePages(buddy, 3).value() == 31);
  CHECK_FALSE(FragmentedFreePages("garbage\n", 2).ok());
  CHECK_FALSE(FragmentedFreePages("", 2).ok());
  CHECK(PsiSomeTotalUs("some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\n"
                       "full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n")
            .value() == 12345);
  CHECK_FALSE(PsiSomeTotalUs("full total=1\n").ok());
}

TEST_CASE("mem agent: config merge and decisions", "[memagent]") {
  CompactConfig c;
  CompactUpdate u;
  u.disabled = false;
  u.period_secs = 0;
  CHECK(MergeCompactUpdate(u, &c).code() == absl::StatusCode::kInvalidArgument);
  CHECK(c.disabled);  // untouched after a refusal
  u.period_secs = 5;
  u.compact_order = 11;
  CHECK(MergeCompactUpdate(u, &c).code() == absl::StatusCode::kInvalidArgument);
  u.compact_order = 3;
  u.period_psi_percent_limit = 101;
  CHECK(MergeCompactUpdate(u, &c).code() == absl::StatusCode::kInvalidArgument);
  u.period_psi_percent_limit = 10;
  REQUIRE(MergeCompactUpdate(u, &c).ok());
  CHECK_FALSE(c.disabled);
  CHECK(c.period_secs == 5);
  CHECK(c.compact_order == 3);
  CHECK(c.compact_threshold == CompactConfig().compact_threshold);  // not given: kept

  c.compact_threshold = 100;
  CHECK(DecideCompact(c, 1, 200, 1, false) == CompactAction::kCompact);
  CHECK(DecideCompact(c, 50, 200, 1, false) == CompactAction::kSkipPressure);
  CHECK(DecideCompact(c, 1, 50, 1, false) == CompactAction::kSkipFragmentation);
  CHECK(DecideCompact(c, 1, 200, 1, true) == CompactAction::kSkipBackoff);
  c.compact_force_times = 3;
  CHECK(DecideCompact(c, 50, 0, 2, false) == CompactAction::kSkipPressure);
  CHECK(DecideCompact(c, 50, 0, 3, false) == CompactAction::kForced);
}

TEST_CASE("diagnostics: lines naming a container", "[diagnostics]") {
  std::string log =
      "{\"msg\":\"a\",\"container\":\"c1\"}\n{\"msg\":\"b\",\"container\":\"c10\"}\n"
      "{\"msg\":\"c\",\"container\":\"c1\"}\n";
  CHECK(LinesNaming(log, "c1") ==
        "{\"msg\":\"a\",\"container\":\"c1\"}\n{\"msg\":\"c\",\"container\":\"c1\"}\n");
  CHECK(DiagnosticData("nope", "").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(DiagnosticData("dmesg", "c1").status().code() == absl::StatusCode::kInvalidArgument);
}
