// The sandbox: CreateSandbox (hostname, id, kernel modules, the pod's ipc and uts
// namespaces, storages, guest hooks, dns) and DestroySandbox (stop every container, run
// their poststop hooks, unmount storages newest first, sync, reply, then power off when
// the agent is PID 1).
#include <google/protobuf/empty.pb.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent.pb.h"
#include "init/kernel_modules.h"
#include "init/pid1.h"
#include "network/dns.h"
#include "runtime/hooks.h"
#include "runtime/shared_namespaces.h"
#include "sandbox/sandbox.h"
#include "service/services.h"
#include "storage/storages.h"
#include "util/log.h"

namespace kata {
namespace {

using Empty = google::protobuf::Empty;

// DestroySandbox: how long the containers get after SIGTERM, then how long each is waited
// for after SIGKILL.
constexpr std::chrono::seconds kTermGrace{5};
constexpr std::chrono::seconds kKillGrace{10};
// The reply goes out on the transport's threads after the handler returns; power off
// that much later so it reaches the host first.
constexpr std::chrono::milliseconds kPowerOffDelay{500};
// Where the pod's ipc and uts namespaces are kept (upstream: /var/run/sandbox-ns).
constexpr char kSharedNsDir[] = "/run/sandbox-ns";

Status Validate(const grpc::CreateSandboxRequest& req, std::vector<KernelModule>* mods) {
  if (req.hostname().size() > 64 || req.hostname().find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("hostname: longer than 64 bytes or contains a NUL byte");
  }
  if (!req.sandbox_id().empty()) RETURN_IF_ERROR(ValidateId("sandbox_id", req.sandbox_id()));
  RETURN_IF_ERROR(ValidateDns({req.dns().begin(), req.dns().end()}));
  for (const auto& m : req.kernel_modules()) {
    mods->push_back({m.name(), {m.parameters().begin(), m.parameters().end()}});
  }
  RETURN_IF_ERROR(ValidateKernelModules(*mods));
  const std::string& hooks = req.guest_hook_path();
  if (!hooks.empty() && (hooks[0] != '/' || hooks.find('\0') != std::string::npos)) {
    return absl::InvalidArgumentError(
        StrCat("guest_hook_path: \"", hooks, "\" is not an absolute path"));
  }
  return absl::OkStatus();
}

// Everything CreateSandbox does after the sandbox exists; on failure the caller undoes it.
Status SetUpPod(CallContext& ctx, const grpc::CreateSandboxRequest& req,
                const std::vector<KernelModule>& mods, Sandbox* sb, Storages* storages, bool pid1) {
  if (!mods.empty() && !pid1) {
    // A host's kernel is never asked to load anything for a pod.
    return absl::FailedPreconditionError(
        "kernel_modules: loaded only by the guest's agent (PID 1), not on a host");
  }
  RETURN_IF_ERROR(LoadKernelModules(mods));
  // As PID 1 the guest is the pod: it takes the pod's hostname, and the pod's ipc and uts
  // namespaces are made. On a host (tests) neither the host's hostname nor its mounts are
  // touched, and each container gets namespaces of its own.
  SharedNamespaces ns;
  if (pid1) {
    if (!req.hostname().empty() && sethostname(req.hostname().data(), req.hostname().size()) < 0) {
      log::Warn("cannot set the guest hostname").Kv("error", ErrnoText(errno));
    }
    ASSIGN_OR_RETURN(ns, SharedNamespaces::Create(kSharedNsDir, req.hostname()));
  }
  std::string resolv;
  if (!req.dns().empty()) {
    resolv = sb->config().bundle_dir + "/sandbox/resolv.conf";
    RETURN_IF_ERROR(
        WriteSandboxResolvConf(resolv, ResolvConfText({req.dns().begin(), req.dns().end()})));
    if (pid1) RETURN_IF_ERROR(BindGuestResolvConf(resolv));
  }
  // The sandbox's storages (the shared fs, the sandbox shm), held until DestroySandbox;
  // after every step that can fail (a failed request gives back what it took).
  RETURN_IF_ERROR(storages->AddSandboxStorages(ctx, req.storages()));
  // The hooks are read once the storages are there (the hook path may be on one).
  GuestHooks hooks;
  if (!req.guest_hook_path().empty()) {
    // As upstream: a hook path that is not there is logged, not fatal (the runtime sends
    // its configured path whatever the image holds).
    StatusOr<GuestHooks> h = ScanGuestHooks(req.guest_hook_path());
    if (h.ok()) {
      hooks = std::move(*h);
      log::Info("guest hooks").Kv("path", req.guest_hook_path()).Kv("count", hooks.count());
    } else {
      log::Warn("guest hooks not read").Kv("error", h.status().ToString());
    }
  }
  sb->pod().Set(std::move(ns), req.hostname(), std::move(hooks), std::move(resolv));
  return absl::OkStatus();
}

}  // namespace

void RegisterSandboxService(Dispatcher& d, ServiceEnv& env) {
  Sandbox* sb = env.sandbox;
  const bool pid1 = env.is_pid1;
  Storages* storages = env.storages;

  d.Add<grpc::CreateSandboxRequest, Empty>(
      "grpc.AgentService/CreateSandbox",
      [sb, pid1, storages](CallContext& ctx, const grpc::CreateSandboxRequest& req,
                           Empty*) -> Status {
        std::vector<KernelModule> mods;
        RETURN_IF_ERROR(Validate(req, &mods));
        RETURN_IF_ERROR(sb->CreateSandbox(req.hostname(), req.sandbox_id()));
        Status st = SetUpPod(ctx, req, mods, sb, storages, pid1);
        if (!st.ok()) {
          // Nothing half made stays: a corrected CreateSandbox may follow.
          sb->pod().Clear();
          if (pid1) UnbindGuestResolvConf();
          sb->ForgetSandbox();
        }
        return Annotate(st, "CreateSandbox");
      });

  d.Add<grpc::DestroySandboxRequest, Empty>(
      "grpc.AgentService/DestroySandbox",
      [sb, pid1, storages](CallContext& ctx, const grpc::DestroySandboxRequest&, Empty*) -> Status {
        // SIGTERM, the grace period, SIGKILL; each container removed with its poststop hooks.
        Status st = sb->DestroySandbox(ctx, kTermGrace, kKillGrace);
        // Every storage, newest first, once the containers are gone.
        if (Status s = storages->ReleaseAll(); !s.ok()) {
          log::Warn("DestroySandbox: storages not all released").Kv("error", s.ToString());
        }
        sb->pod().Clear();
        if (pid1) UnbindGuestResolvConf();
        sync();
        if (pid1) {
          std::thread([] {
            std::this_thread::sleep_for(kPowerOffDelay);
            PowerOff("DestroySandbox");
          }).detach();
        }
        return st;
      });
}

}  // namespace kata
