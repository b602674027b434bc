#include "storage/storages.h"

#include "storage/container_devices.h"
#include "storage/storage.h"
#include "util/log.h"

namespace kata {

Storages::Storages(const AgentConfig& cfg) : cfg_(cfg), registry_(UndoStorage) {}

std::chrono::milliseconds Storages::hotplug_timeout() const {
  return std::chrono::milliseconds(static_cast<int64_t>(cfg_.hotplug_timeout_s) * 1000);
}

StatusOr<std::vector<StorageSpec>> Storages::Validate(
    const google::protobuf::RepeatedPtrField<grpc::Storage>& storages) const {
  std::vector<StorageSpec> out;
  for (const grpc::Storage& s : storages) {
    ASSIGN_OR_RETURN(StorageSpec spec, ParseStorage(s));
    RETURN_IF_ERROR(UnsupportedStorageDriver(spec.driver));
    if (!FindStorageDriver(spec.driver)) {
      return absl::InvalidArgumentError(
          StrCat("storage ", spec.mount_point, ": unknown driver '", spec.driver, "'"));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

Status Storages::Acquire(CallContext& ctx, const std::string& owner,
                         const std::string& container_id, const std::vector<StorageSpec>& specs) {
  DriverContext dc;
  dc.ctx = &ctx;
  dc.hotplug_timeout = hotplug_timeout();
  dc.container_id = container_id;
  dc.bundle_dir = cfg_.bundle_dir;
  return registry_.Acquire(ctx, owner, specs, [&](const StorageSpec& s) {
    return (*FindStorageDriver(s.driver))(dc, s);
  });
}

Status Storages::AddSandboxStorages(
    CallContext& ctx, const google::protobuf::RepeatedPtrField<grpc::Storage>& storages) {
  ASSIGN_OR_RETURN(std::vector<StorageSpec> specs, Validate(storages));
  return Acquire(ctx, "", "", specs);
}

StatusOr<std::string> Storages::PrepareContainer(CallContext& ctx,
                                                 const grpc::CreateContainerRequest& req,
                                                 grpc::Spec* spec) {
  ASSIGN_OR_RETURN(std::vector<StorageSpec> specs, Validate(req.storages()));
  RETURN_IF_ERROR(ValidateDevices(req.devices()));
  const std::string token = StrCat("\x01request-", next_token_++, "-", req.container_id());
  RETURN_IF_ERROR(Acquire(ctx, token, req.container_id(), specs));
  // Devices after storages, as upstream: both wait for hot-plugged disks.
  StatusOr<std::vector<DeviceUpdate>> devs = ResolveDevices(ctx, req.devices(), hotplug_timeout());
  Status st = devs.ok() ? PatchSpecDevices(*devs, spec) : devs.status();
  if (!st.ok()) {
    (void)Release(token);
    return st;
  }
  return token;
}

Status Storages::CreateContainerWith(CallContext& ctx, const grpc::CreateContainerRequest& req,
                                     const std::function<Status(const grpc::Spec&)>& create) {
  if (req.shared_mounts_size() > 0) {
    return absl::InvalidArgumentError(
        "unsupported: shared_mounts (mounts shared between containers) are not implemented");
  }
  if (req.stdin_port() || req.stdout_port() || req.stderr_port()) {
    return absl::InvalidArgumentError(
        "unsupported: stdin_port/stdout_port/stderr_port (passfd stdio) are not implemented; "
        "use the stdio RPCs");
  }
  if (req.storages().empty() && req.devices().empty()) return create(req.oci());
  grpc::Spec spec = req.oci();
  ASSIGN_OR_RETURN(std::string token, PrepareContainer(ctx, req, &spec));
  Status st = create(spec);
  if (!st.ok()) {
    (void)Release(token);
    return st;
  }
  CommitContainer(token, req.container_id());
  return absl::OkStatus();
}

void Storages::CommitContainer(const std::string& token, const std::string& container_id) {
  registry_.Rename(token, container_id);
}

Status Storages::Release(const std::string& owner) { return registry_.Release(owner); }

Status Storages::ReleaseAll() { return registry_.ReleaseAll(); }

}  // namespace kata
