#include "init/agent_main.h"

#include <getopt.h>
#include <malloc.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "init/config.h"
#include "init/pid1.h"
#include "policy/policy.h"
#include "rpc/address.h"
#include "rpc/dispatcher.h"
// KATA_GRPC=0: the ttrpc-only flavour (agent/CMakeLists.txt, -DKATA_GRPC=OFF).
#ifndef KATA_GRPC
#define KATA_GRPC 1
#endif
#if KATA_GRPC
#include "rpc/grpc_server.h"
#endif
#include "rpc/listener.h"
#include "rpc/ttrpc_server.h"
#include "runtime/cgroups.h"
#include "sandbox/oom_events.h"
#include "sandbox/sandbox.h"
#include "service/services.h"
#include "storage/storages.h"
#include "storage/uevent.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/reaper.h"

namespace kata {
namespace {

// Milliseconds since the guest booted (CLOCK_BOOTTIME): lets the boot benchmark place the
// agent's own milestones on the kernel's timeline.
double BoottimeMs() {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double MonotonicMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void Usage(FILE* out) {
  fprintf(out,
          "usage: kata-agent [--server-addr ADDR] [--log-level LEVEL] [--sniff-timeout SECONDS]\n"
          "                  [--bundle-dir DIR] [--container-pipe-size BYTES] [--policy FILE]\n"
          "\n"
          "  ADDR: vsock://CID:PORT | unix:///path | unix://@abstract\n"
          "        (also agent.server_addr= on the kernel command line or KATA_AGENT_SERVER_ADDR;\n"
          "         the default vsock://-1:1024 applies only when the agent runs as PID 1)\n"
          "  LEVEL: debug | info | warn | error | critical\n"
          "  FILE: the API policy (docs/policy.md; agent.policy= on the kernel command line)\n"
          "  DIR: base of container bundles (default /run/kata-containers)\n");
}

void RaiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
      log::Debug("raised RLIMIT_NOFILE")
          .Kv("from", static_cast<uint64_t>(old))
          .Kv("to", static_cast<uint64_t>(rl.rlim_max));
    }
  }
}

const char* Getenv(const char* name) { return getenv(name); }

}  // namespace

int AgentMain(int argc, char** argv) {
  const double t0 = MonotonicMs();
  BlockSignalsEarly();
  // One malloc arena for all threads. RPC workers come and go by the hundred; with glibc's
  // default of up to 8 arenas per CPU, memory freed in one arena stays out of reach of
  // threads attached to another, and the RSS grows with which thread happened to run which
  // call. Fixed thresholds keep the 1 MiB stdio buffers in the heap and the heap's top
  // untrimmed below 8 MiB: in the one arena glibc's sliding thresholds otherwise returned
  // and refaulted megabytes on every WriteStdin (0.7x the throughput, bench/analysis.md).
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
  const bool pid1 = getpid() == 1;

  AgentConfig cfg;
  std::vector<CmdlineNote> notes;
  if (pid1) {
    // Mounts /proc and friends and re-roots off the initramfs (which re-executes the
    // agent); returns here in the final root.
    Pid1EarlySetup(argc, argv);
    StatusOr<std::string> cmdline = ReadFileString("/proc/cmdline", 64 * 1024);
    if (cmdline.ok()) {
      notes = ParseKernelCmdline(*cmdline, &cfg);
    } else {
      notes.push_back({log::Level::kWarn, std::string("cannot read /proc/cmdline: ") +
                                              std::string(cmdline.status().message())});
    }
  }
  for (auto& n : ApplyEnvironment(&Getenv, &cfg)) notes.push_back(std::move(n));

  static const struct option kOpts[] = {
      {"server-addr", required_argument, nullptr, 'a'},
      {"log-level", required_argument, nullptr, 'l'},
      {"sniff-timeout", required_argument, nullptr, 's'},
      {"bundle-dir", required_argument, nullptr, 'b'},
      {"container-pipe-size", required_argument, nullptr, 'p'},
      {"policy", required_argument, nullptr, 'P'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", kOpts, nullptr)) != -1) {
    switch (c) {
      case 'a':
        cfg.server_addr = optarg;
        break;
      case 'l':
        if (!log::ParseLevel(optarg, &cfg.log_level)) {
          fprintf(stderr, "kata-agent: invalid log level '%s'\n", optarg);
          return 2;
        }
        break;
      case 's':
        cfg.sniff_timeout_s = static_cast<uint32_t>(atoi(optarg));
        break;
      case 'b':
        cfg.bundle_dir = optarg;
        break;
      case 'p':
        cfg.container_pipe_size = static_cast<uint32_t>(atoi(optarg));
        break;
      case 'P':
        cfg.policy_path = optarg;
        break;
      case 'V':
        printf("kata-agent %s\n", kAgentVersion);
        return 0;
      case 'h':
        Usage(stdout);
        return 0;
      default:
        Usage(stderr);
        return 2;
    }
  }
  log::SetLevel(cfg.log_level);
  for (const auto& n : notes) log::Line(n.level, n.text);

  if (cfg.server_addr.empty()) {
    if (!pid1) {
      fprintf(stderr,
              "kata-agent: no server address: give --server-addr (or KATA_AGENT_SERVER_ADDR);\n"
              "the default %s applies only when the agent runs as PID 1\n",
              std::string(kDefaultServerAddr).c_str());
      Usage(stderr);
      return 2;
    }
    cfg.server_addr = std::string(kDefaultServerAddr);
  }
  log::Info("starting")
      .Kv("version", kAgentVersion)
      .Kv("grpc", KATA_GRPC != 0)
      .Kv("boottime_ms", BoottimeMs())
      .Kv("pid1", pid1)
      .Kv("server_addr", cfg.server_addr)
      .Kv("log_level", log::LevelName(cfg.log_level))
      .Kv("debug_console", cfg.debug_console)
      .Kv("debug_console_vport", cfg.debug_console_vport)
      .Kv("log_vport", cfg.log_vport)
      .Kv("hotplug_timeout_s", cfg.hotplug_timeout_s)
      .Kv("container_pipe_size", cfg.container_pipe_size)
      .Kv("policy", cfg.policy_path);

  auto fail = [&](const Status& st) -> int {
    log::Critical("cannot start the agent").Kv("error", st.ToString());
    if (pid1) PowerOff("fatal start-up error");  // never returns
    return 1;
  };

  RaiseFdLimit();
  if (Status st = Reaper::Get().Start(/*as_subreaper=*/!pid1); !st.ok()) return fail(st);
  if (pid1) Pid1Services(cfg);
  // Device events are recorded from here on, so no hot-plugged disk or NIC is missed.
  if (Status st = UeventMonitor::Get().Start(); !st.ok()) {
    if (pid1) return fail(st);
    log::Warn("no uevent monitor: device waits will time out").Kv("error", st.ToString());
  }

  StatusOr<Address> addr = ParseAddress(cfg.server_addr);
  if (!addr.ok()) return fail(addr.status());
  if (addr->kind == Address::Kind::kHybridVsock) {
    return fail(absl::InvalidArgumentError("the agent cannot listen on an hvsock:// address"));
  }

  static Sandbox sandbox(cfg);
  if (Status st = sandbox.Init(); !st.ok()) return fail(st);
  static Dispatcher dispatcher;
  static ServiceEnv env;
  env.config = &cfg;
  env.sandbox = &sandbox;
  env.is_pid1 = pid1;
  static OomEvents oom_events;
  env.oom_events = &oom_events;
  if (pid1 && PureCgroup2()) {
    // Only the guest's cgroups, never a host's: the agent must be PID 1 on pure cgroup2.
    uint64_t reserve = static_cast<uint64_t>(cfg.memory_reserve_mb) << 20;
    if (Status st = sandbox.EnableCgroups(reserve, &oom_events); !st.ok()) {
      log::Error("cgroups: not managed; containers run without limits").Kv("error", st.ToString());
    }
  }
  static Storages storages(cfg);
  env.storages = &storages;
  DeclareApi(dispatcher);
  RegisterHealthService(dispatcher, env);
  RegisterGuestService(dispatcher, env);
  RegisterSandboxService(dispatcher, env);
  RegisterContainerService(dispatcher, env);
  RegisterEventsService(dispatcher, env);
  RegisterNetworkService(dispatcher, env);
  RegisterResourcesService(dispatcher, env);
  RegisterStorageService(dispatcher, env);
  static PolicyStore policy;
  env.policy = &policy;
  RegisterPolicyService(dispatcher, env);
  dispatcher.SetAdmission([](std::string_view method, std::string_view request) {
    return policy.Admit(method, request);
  });
  if (!cfg.policy_path.empty()) {
    // A policy that cannot be read or parsed stops the agent: serving without it would
    // run what it was meant to refuse.
    StatusOr<std::string> text = ReadFileString(cfg.policy_path, 1 << 20);
    if (!text.ok()) return fail(Annotate(text.status(), "agent.policy"));
    StatusOr<Policy> p =
        Policy::Parse(*text, [](std::string_view m) { return dispatcher.Known(m); });
    if (!p.ok()) return fail(Annotate(p.status(), cfg.policy_path));
    if (Status st = policy.Install(std::move(*p), StrCat("agent.policy=", cfg.policy_path));
        !st.ok()) {
      return fail(st);
    }
  }

#if KATA_GRPC
  static GrpcServer grpc_server(dispatcher);
  if (Status st = grpc_server.Start(); !st.ok()) return fail(st);
#endif
  static TtrpcServer ttrpc_server(dispatcher);

  StatusOr<UniqueFd> lfd = Listen(*addr);
  if (!lfd.ok()) return fail(lfd.status());
  static Listener listener(std::chrono::seconds(cfg.sniff_timeout_s));
#if KATA_GRPC
  listener.OnGrpc([](UniqueFd fd) { grpc_server.AddConnection(std::move(fd)); });
#else
  // The ttrpc-only flavour: an HTTP/2 client is told so in the log, then closed.
  listener.OnGrpc(
      [](UniqueFd) { log::Warn("closing a gRPC connection: this agent serves ttrpc only"); });
#endif
  listener.OnTtrpc([](UniqueFd fd) { ttrpc_server.AddConnection(std::move(fd)); });
  if (Status st = listener.Add(std::move(*lfd), addr->ToString()); !st.ok()) return fail(st);
  if (Status st = listener.Start(); !st.ok()) return fail(st);

  log::Info("listening")
      .Kv("addr", addr->ToString())
      .Kv("start_ms", MonotonicMs() - t0)
      .Kv("boottime_ms", BoottimeMs());

  // The agent serves until DestroySandbox powers the VM off (PID 1) or it is signalled.
  WaitForTermination(pid1);
  sandbox.KillAllContainers();  // a plain process leaves no container behind
  return 0;
}

}  // namespace kata
