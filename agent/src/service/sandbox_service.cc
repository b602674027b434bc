// The sandbox: CreateSandbox and DestroySandbox (the minimal pair: hostname and id;
// stop everything, sync, reply, and power off when the agent is PID 1).
#include <google/protobuf/empty.pb.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent.pb.h"
#include "init/pid1.h"
#include "sandbox/sandbox.h"
#include "service/services.h"
#include "storage/storages.h"
#include "util/log.h"

namespace kata {
namespace {

using Empty = google::protobuf::Empty;

// How long DestroySandbox waits for each container's processes after SIGKILL.
constexpr std::chrono::seconds kDestroyGrace{10};
// The reply goes out on the transport's threads after the handler returns; power off
// that much later so it reaches the host first.
constexpr std::chrono::milliseconds kPowerOffDelay{500};

}  // namespace

void RegisterSandboxService(Dispatcher& d, ServiceEnv& env) {
  Sandbox* sb = env.sandbox;
  const bool pid1 = env.is_pid1;
  Storages* storages = env.storages;

  d.Add<grpc::CreateSandboxRequest, Empty>(
      "grpc.AgentService/CreateSandbox",
      [sb, pid1, storages](CallContext& ctx, const grpc::CreateSandboxRequest& req,
                           Empty*) -> Status {
        if (req.hostname().size() > 64 || req.hostname().find('\0') != std::string::npos) {
          return absl::InvalidArgumentError(
              "hostname: longer than 64 bytes or contains a NUL byte");
        }
        if (!req.sandbox_id().empty()) RETURN_IF_ERROR(ValidateId("sandbox_id", req.sandbox_id()));
        RETURN_IF_ERROR(sb->CreateSandbox(req.hostname(), req.sandbox_id()));
        // The VM is the sandbox: as PID 1 the guest itself takes the pod's hostname. On a
        // host (tests) the host's hostname is never touched.
        if (pid1 && !req.hostname().empty() &&
            sethostname(req.hostname().data(), req.hostname().size()) < 0) {
          log::Warn("cannot set the guest hostname").Kv("error", ErrnoText(errno));
        }
        // The sandbox's storages (the shared fs, the sandbox shm), held until DestroySandbox.
        return Annotate(storages->AddSandboxStorages(ctx, req.storages()), "CreateSandbox");
      });

  d.Add<grpc::DestroySandboxRequest, Empty>(
      "grpc.AgentService/DestroySandbox",
      [sb, pid1, storages](CallContext& ctx, const grpc::DestroySandboxRequest&, Empty*) -> Status {
        Status st = sb->DestroySandbox(ctx, kDestroyGrace);
        // Every storage, newest first, once the containers are gone.
        (void)storages->ReleaseAll();
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
