#include <sys/prctl.h>
#include <unistd.h>

#include <linux/seccomp.h>

#include "agent.pb.h"
#include "service/services.h"
#include "util/fs.h"

namespace kata {
namespace {

bool KernelSupportsSeccomp() {
  // PR_GET_SECCOMP fails with EINVAL when the kernel lacks CONFIG_SECCOMP; the filter mode
  // needs CONFIG_SECCOMP_FILTER, visible as the actions_avail sysctl.
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) return false;
  return access("/proc/sys/kernel/seccomp/actions_avail", R_OK) == 0;
}

}  // namespace

// Storage drivers and device types the agent handles; extended as they land.
extern const char* const kStorageHandlers[];
extern const char* const kDeviceHandlers[];

void RegisterGuestService(Dispatcher& d, ServiceEnv& env) {
  d.Add<grpc::GuestDetailsRequest, grpc::GuestDetailsResponse>(
      "grpc.AgentService/GetGuestDetails",
      [&env](CallContext&, const grpc::GuestDetailsRequest& req, grpc::GuestDetailsResponse* r) -> Status {
        if (req.mem_block_size()) {
          // A hex number without 0x, e.g. "8000000".
          StatusOr<std::string> s = ReadFileString("/sys/devices/system/memory/block_size_bytes", 64);
          if (s.ok()) r->set_mem_block_size_bytes(strtoull(s->c_str(), nullptr, 16));
        }
        if (req.mem_hotplug_probe()) {
          r->set_support_mem_hotplug_probe(access("/sys/devices/system/memory/probe", W_OK) == 0);
        }
        auto* a = r->mutable_agent_details();
        a->set_version(kAgentVersion);
        a->set_init_daemon(env.is_pid1);
        for (const char* const* h = kStorageHandlers; *h; h++) a->add_storage_handlers(*h);
        for (const char* const* h = kDeviceHandlers; *h; h++) a->add_device_handlers(*h);
        a->set_supports_seccomp(KernelSupportsSeccomp());
        return absl::OkStatus();
      });
}

}  // namespace kata
