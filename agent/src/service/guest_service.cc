// GetGuestDetails and the guest services: SetGuestDateTime, ReseedRandomDev, OnlineCPUMem,
// MemHotplugByProbe, GetMetrics, GetDiagnosticData, MemAgentMemcgSet, MemAgentCompactSet.
//
// What changes the machine (its clock, entropy pool, CPUs, memory, compaction) is done only
// by the agent as the guest's init: the same binary run on a host for tests must not set
// the host's clock or online its CPUs. Requests are validated first either way.
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/seccomp.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "agent.pb.h"
#include "guest/clock.h"
#include "guest/diagnostics.h"
#include "guest/entropy.h"
#include "guest/hotplug.h"
#include "guest/mem_agent.h"
#include "guest/metrics.h"
#include "rpc/worker_pool.h"
#include "sandbox/sandbox.h"
#include "service/services.h"

namespace kata {
namespace {

using Empty = google::protobuf::Empty;

// A hot-added CPU or DIMM appears a moment after the VMM's ACPI notification: OnlineCPUMem
// looks for it this long at least (agent.hotplug_timeout= when longer).
constexpr std::chrono::seconds kHotplugAppearTimeout(5);
constexpr uint32_t kMaxCpus = 4096;

bool KernelSupportsSeccomp() {
  // PR_GET_SECCOMP fails with EINVAL when the kernel lacks CONFIG_SECCOMP; the filter mode
  // needs CONFIG_SECCOMP_FILTER, visible as the actions_avail sysctl.
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) return false;
  return access("/proc/sys/kernel/seccomp/actions_avail", R_OK) == 0;
}

Status GuestOnly(const ServiceEnv& env, std::string_view what) {
  if (env.is_pid1) return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat(what,
             " changes the machine the agent runs on, done only as the guest's init "
             "(this agent is pid ",
             getpid(), ", not PID 1)"));
}

}  // namespace

// Storage drivers and device types the agent handles; extended as they land.
extern const char* const kStorageHandlers[];
extern const char* const kDeviceHandlers[];

void RegisterGuestService(Dispatcher& d, ServiceEnv& env) {
  StartAgentLogTail();
  static MemAgent mem_agent;

  d.Add<grpc::GuestDetailsRequest, grpc::GuestDetailsResponse>(
      "grpc.AgentService/GetGuestDetails",
      [&env](CallContext&, const grpc::GuestDetailsRequest& req,
             grpc::GuestDetailsResponse* r) -> Status {
        if (req.mem_block_size()) {
          // Absent without MEMORY_HOTPLUG (or on a host without it): 0, as upstream.
          StatusOr<uint64_t> s = MemoryBlockSize();
          if (s.ok()) r->set_mem_block_size_bytes(*s);
        }
        if (req.mem_hotplug_probe()) r->set_support_mem_hotplug_probe(MemoryProbeSupported());
        auto* a = r->mutable_agent_details();
        a->set_version(kAgentVersion);
        a->set_init_daemon(env.is_pid1);
        for (const char* const* h = kStorageHandlers; *h; h++) a->add_storage_handlers(*h);
        for (const char* const* h = kDeviceHandlers; *h; h++) a->add_device_handlers(*h);
        a->set_supports_seccomp(KernelSupportsSeccomp());
        return absl::OkStatus();
      });

  d.Add<grpc::SetGuestDateTimeRequest, Empty>(
      "grpc.AgentService/SetGuestDateTime",
      [&env](CallContext&, const grpc::SetGuestDateTimeRequest& req, Empty*) -> Status {
        if (req.sec() < 0 || req.usec() < 0 || req.usec() >= 1000000) {
          return SetWallClock(req.sec(), req.usec());  // INVALID_ARGUMENT naming the field
        }
        RETURN_IF_ERROR(GuestOnly(env, "SetGuestDateTime"));
        return SetWallClock(req.sec(), req.usec());
      });

  d.Add<grpc::ReseedRandomDevRequest, Empty>(
      "grpc.AgentService/ReseedRandomDev",
      [&env](CallContext&, const grpc::ReseedRandomDevRequest& req, Empty*) -> Status {
        if (req.data().empty() || req.data().size() > kMaxEntropyBytes) {
          return AddEntropy(req.data());  // INVALID_ARGUMENT with the size
        }
        RETURN_IF_ERROR(GuestOnly(env, "ReseedRandomDev"));
        return AddEntropy(req.data());
      });

  d.Add<grpc::OnlineCPUMemRequest, Empty>(
      "grpc.AgentService/OnlineCPUMem",
      [&env](CallContext& ctx, const grpc::OnlineCPUMemRequest& req, Empty*) -> Status {
        if (req.nb_cpus() > kMaxCpus) {
          return absl::InvalidArgumentError(
              StrCat("nb_cpus ", req.nb_cpus(), " is more than ", kMaxCpus, " CPUs"));
        }
        RETURN_IF_ERROR(GuestOnly(env, "OnlineCPUMem"));
        // Memory first: the CPUs' work will want it. `wait` needs nothing more: both steps
        // are done when the call returns.
        std::chrono::milliseconds timeout = std::max<std::chrono::milliseconds>(
            kHotplugAppearTimeout,
            std::chrono::seconds(env.config ? env.config->hotplug_timeout_s : 0));
        if (req.nb_cpus() == 0 && !req.cpu_only()) {
          // Memory alone: the VMM has just hot-added a DIMM, which may not be visible yet.
          RETURN_IF_ERROR(OnlineHotAddedMemory(ctx, timeout).status());
        } else if (!req.cpu_only()) {
          RETURN_IF_ERROR(OnlineMemoryBlocks().status());
        }
        if (req.nb_cpus() > 0) RETURN_IF_ERROR(OnlineCpus(ctx, req.nb_cpus(), timeout).status());
        return absl::OkStatus();
      });

  d.Add<grpc::MemHotplugByProbeRequest, Empty>(
      "grpc.AgentService/MemHotplugByProbe",
      [&env](CallContext&, const grpc::MemHotplugByProbeRequest& req, Empty*) -> Status {
        if (req.memhotplugprobeaddr().empty()) {
          return absl::InvalidArgumentError("memHotplugProbeAddr: no address");
        }
        RETURN_IF_ERROR(GuestOnly(env, "MemHotplugByProbe"));
        std::vector<uint64_t> addrs(req.memhotplugprobeaddr().begin(),
                                    req.memhotplugprobeaddr().end());
        return ProbeMemory(addrs);
      });

  d.Add<grpc::GetMetricsRequest, grpc::Metrics>(
      "grpc.AgentService/GetMetrics",
      [&env, &d](CallContext&, const grpc::GetMetricsRequest&, grpc::Metrics* r) -> Status {
        AgentCounters c;
        c.containers = env.sandbox ? env.sandbox->container_count() : 0;
        c.rpc_workers = WorkerPool::Default().threads();
        for (const auto& [method, n] : d.Snapshot()) c.rpcs[method] = {n.calls, n.errors};
        c.extra = mem_agent.Metrics();
        r->set_metrics(CollectMetrics(c));
        return absl::OkStatus();
      });

  d.Add<grpc::GetDiagnosticDataRequest, grpc::GetDiagnosticDataResponse>(
      "grpc.AgentService/GetDiagnosticData",
      [&env](CallContext&, const grpc::GetDiagnosticDataRequest& req,
             grpc::GetDiagnosticDataResponse* r) -> Status {
        if (!req.container_id().empty() && env.sandbox) {
          RETURN_IF_ERROR(env.sandbox->Get(req.container_id()).status());
        }
        ASSIGN_OR_RETURN(std::string data, DiagnosticData(req.log_type(), req.container_id()));
        r->set_data(std::move(data));
        return absl::OkStatus();
      });

  d.Add<grpc::MemAgentMemcgConfig, Empty>(
      "grpc.AgentService/MemAgentMemcgSet",
      [](CallContext&, const grpc::MemAgentMemcgConfig& req, Empty*) -> Status {
        bool others = req.has_swap() || req.has_swappiness_max() || req.has_period_secs() ||
                      req.has_period_psi_percent_limit() || req.has_eviction_psi_percent_limit() ||
                      req.has_eviction_run_aging_count_min();
        return mem_agent.SetMemcg(
            req.has_disabled() ? std::optional<bool>(req.disabled()) : std::nullopt, others);
      });

  d.Add<grpc::MemAgentCompactConfig, Empty>(
      "grpc.AgentService/MemAgentCompactSet",
      [&env](CallContext&, const grpc::MemAgentCompactConfig& req, Empty*) -> Status {
        CompactUpdate u;
        if (req.has_disabled()) u.disabled = req.disabled();
        if (req.has_period_secs()) u.period_secs = req.period_secs();
        if (req.has_period_psi_percent_limit())
          u.period_psi_percent_limit = req.period_psi_percent_limit();
        if (req.has_compact_psi_percent_limit())
          u.compact_psi_percent_limit = req.compact_psi_percent_limit();
        if (req.has_compact_sec_max()) u.compact_sec_max = req.compact_sec_max();
        if (req.has_compact_order()) u.compact_order = req.compact_order();
        if (req.has_compact_threshold()) u.compact_threshold = req.compact_threshold();
        if (req.has_compact_force_times()) u.compact_force_times = req.compact_force_times();
        CompactConfig probe;
        RETURN_IF_ERROR(MergeCompactUpdate(u, &probe));  // INVALID_ARGUMENT first
        if (!u.disabled.value_or(false)) RETURN_IF_ERROR(GuestOnly(env, "MemAgentCompactSet"));
        return mem_agent.SetCompact(u);
      });
}

}  // namespace kata
