// The sandbox's pod-wide parts: guest hooks (scan, state JSON, running with a timeout),
// the pod's changes to a container spec, the dns file, kernel module requests.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "init/kernel_modules.h"
#include "network/dns.h"
#include "runtime/hooks.h"
#include "sandbox/pod.h"
#include "util/reaper.h"

using namespace kata;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/kata-pod-test-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { (void)!system(("rm -rf " + path).c_str()); }
};

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

void EnsureReaper() {
  static bool started = [] {
    BlockSignalsEarly();
    return Reaper::Get().Start(/*as_subreaper=*/false).ok();
  }();
  REQUIRE(started);
}

}  // namespace

TEST_CASE("guest hooks: executable regular files of each type's directory, by name") {
  TempDir d;
  mkdir((d.path + "/prestart").c_str(), 0755);
  mkdir((d.path + "/poststop").c_str(), 0755);
  WriteFile(d.path + "/prestart/20-b", "#!/bin/sh\n", 0755);
  WriteFile(d.path + "/prestart/10-a", "#!/bin/sh\n", 0700);
  WriteFile(d.path + "/prestart/30-not-executable", "#!/bin/sh\n", 0644);
  REQUIRE(symlink("/bin/true", (d.path + "/prestart/15-link").c_str()) == 0);
  mkdir((d.path + "/prestart/40-dir").c_str(), 0755);
  WriteFile(d.path + "/poststop/x", "#!/bin/sh\n", 0755);
  auto h = ScanGuestHooks(d.path);
  REQUIRE(h.ok());
  REQUIRE(h->prestart.size() == 2);
  CHECK(h->prestart[0].path == d.path + "/prestart/10-a");
  CHECK(h->prestart[0].args == std::vector<std::string>{"10-a", "prestart"});
  CHECK(h->prestart[1].path == d.path + "/prestart/20-b");
  CHECK(h->poststop.size() == 1);
  CHECK(h->poststop[0].args[1] == "poststop");
  CHECK(h->create_runtime.empty());
  CHECK(h->count() == 3);

  CHECK(ScanGuestHooks("relative/path").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ScanGuestHooks(d.path + "/missing").status().code() != absl::StatusCode::kOk);
  CHECK(ScanGuestHooks(d.path + "/poststop/x").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("hook state: OCI state JSON, pid left out when there is none") {
  HookState s{"c1", "created", 42, "/run/kata-containers/c1", {{"k\"q", "v\n"}, {"a", "b"}}};
  CHECK(
      HookStateJson(s) ==
      "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"created\",\"pid\":42,"
      "\"bundle\":\"/run/kata-containers/c1\",\"annotations\":{\"a\":\"b\",\"k\\\"q\":\"v\\n\"}}");
  s.pid = 0;
  s.status = "stopped";
  s.annotations.clear();
  CHECK(HookStateJson(s) ==
        "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"status\":\"stopped\","
        "\"bundle\":\"/run/kata-containers/c1\"}");
}

TEST_CASE("running a hook: argv, empty environment, state on stdin, exit status, timeout") {
  EnsureReaper();
  TempDir d;
  std::string out = d.path + "/out";
  WriteFile(d.path + "/hook",
            "#!/bin/sh\necho \"$0 $1 $2 env=$(env | wc -l)\" > " + out + "\ncat >> " + out + "\n",
            0755);
  Hook h{d.path + "/hook", {"name-in-argv0", "prestart"}, {}, 0};
  REQUIRE(RunHook(h, "{\"id\":\"c1\"}").ok());
  std::ifstream f(out);
  std::string line1, line2;
  std::getline(f, line1);
  std::getline(f, line2);
  // sh sets PWD (and SHLVL) itself; nothing of the agent's environment is passed.
  CHECK(line1.find("prestart") != std::string::npos);
  CHECK(line2 == "{\"id\":\"c1\"}");

  WriteFile(d.path + "/fails", "#!/bin/sh\necho bad thing >&2\nexit 3\n", 0755);
  Status st = RunHooks({Hook{d.path + "/fails", {}, {}, 0}}, "poststart", "{}");
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(st.message().find("exited 3") != std::string::npos);
  CHECK(st.message().find("bad thing") != std::string::npos);
  CHECK(st.message().find("poststart hook") != std::string::npos);

  WriteFile(d.path + "/slow", "#!/bin/sh\nexec sleep 30\n", 0755);
  auto t0 = std::chrono::steady_clock::now();
  st = RunHook(Hook{d.path + "/slow", {}, {}, 1}, "{}");
  CHECK(st.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));

  st = RunHook(Hook{d.path + "/missing", {}, {}, 0}, "{}");
  CHECK_FALSE(st.ok());
}

TEST_CASE("pod spec changes: listed ipc/uts namespaces are the pod's, resolv.conf bind") {
  grpc::Spec s;
  s.set_hostname("from-spec");
  auto* l = s.mutable_linux();
  auto add_ns = [&](const char* type, const char* path) {
    auto* n = l->add_namespaces();
    n->set_type(type);
    n->set_path(path);
  };
  add_ns("ipc", "/proc/123/ns/ipc");  // a host path: meaningless in the guest
  add_ns("uts", "");
  add_ns("mount", "");
  auto* m = s.add_mounts();
  m->set_destination("/etc/resolv.conf");
  m->set_type("bind");
  m->set_source("/run/kata-containers/shared/containers/c-resolv.conf");
  auto* m2 = s.add_mounts();
  m2->set_destination("/etc/hosts");
  m2->set_type("bind");
  m2->set_source("/x/hosts");

  PodView pod{"/run/sandbox-ns/ipc",
              "/run/sandbox-ns/uts",
              "pod",
              "/run/kata-containers/sandbox/resolv.conf",
              {}};
  // A hostname of its own: a uts namespace of its own (the pod is never renamed).
  grpc::Spec own = s;
  ApplyPodToSpec(pod, &own);
  CHECK(own.linux().namespaces(1).path().empty());
  CHECK(own.hostname() == "from-spec");
  CHECK(own.linux().namespaces(0).path() == "/run/sandbox-ns/ipc");
  // The sandbox's hostname (as the runtime sends it): the pod's uts namespace.
  grpc::Spec a = s;
  a.set_hostname("pod");
  ApplyPodToSpec(pod, &a);
  CHECK(a.linux().namespaces(0).path() == "/run/sandbox-ns/ipc");
  CHECK(a.linux().namespaces(1).path() == "/run/sandbox-ns/uts");
  CHECK(a.linux().namespaces(2).path().empty());
  CHECK(a.hostname().empty());
  CHECK(a.mounts(0).source() == "/run/kata-containers/sandbox/resolv.conf");
  CHECK(a.mounts(1).source() == "/x/hosts");

  // No pod namespaces (not PID 1) and no dns: a new ipc namespace, the spec's own hostname.
  grpc::Spec b = s;
  ApplyPodToSpec(PodView{}, &b);
  CHECK(b.linux().namespaces(0).path().empty());
  CHECK(b.hostname() == "from-spec");
  CHECK(b.mounts(0).source() == "/run/kata-containers/shared/containers/c-resolv.conf");
}

TEST_CASE("a container's hooks: the spec's first, then the guest's") {
  grpc::Spec s;
  auto* h = s.mutable_hooks()->add_poststop();
  h->set_path("/spec/hook");
  h->set_timeout(3);
  PodView pod;
  pod.hooks.poststop.push_back(Hook{"/guest/hook", {"hook", "poststop"}, {}, 0});
  pod.hooks.prestart.push_back(Hook{"/guest/pre", {}, {}, 0});
  GuestHooks all = HooksFor(pod, s);
  REQUIRE(all.poststop.size() == 2);
  CHECK(all.poststop[0].path == "/spec/hook");
  CHECK(all.poststop[0].timeout_s == 3);
  CHECK(all.poststop[1].path == "/guest/hook");
  CHECK(all.prestart.size() == 1);
}

TEST_CASE("dns: one entry a line, trimmed; newlines and NULs refused") {
  CHECK(ResolvConfText({" nameserver 10.0.0.1 ", "search a.b", ""}) ==
        "nameserver 10.0.0.1\nsearch a.b\n\n");
  CHECK(ValidateDns({"nameserver 1.1.1.1"}).ok());
  CHECK(ValidateDns({"nameserver 1.1.1.1\nnameserver 2.2.2.2"}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(ValidateDns({std::string("a\0b", 3)}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateDns(std::vector<std::string>(300, "x")).code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("kernel modules: names checked; no modules in the image is FAILED_PRECONDITION") {
  CHECK(ValidateKernelModules({{"dummy", {"numdummies=2"}}}).ok());
  CHECK(ValidateKernelModules({{"", {}}}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateKernelModules({{"../x", {}}}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateKernelModules({{"-r", {}}}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateKernelModules({{"m", {"--force"}}}).code() == absl::StatusCode::kInvalidArgument);
  TempDir d;
  Status st = LoadKernelModules({{"dummy", {}}}, d.path);
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(st.message().find(d.path) != std::string::npos);
  CHECK(LoadKernelModules({}, d.path).ok());
}
