// The storage layer as the services see it: the storages and devices of CreateSandbox and
// CreateContainer, reference-counted, released by RemoveContainer and DestroySandbox.
//
//   Storages st(cfg);
//   RETURN_IF_ERROR(st.AddSandboxStorages(ctx, req.storages()));           // CreateSandbox
//   RETURN_IF_ERROR(st.CreateContainerWith(ctx, req, [&](const grpc::Spec& spec) {
//     return sandbox->CreateContainer(..., spec, ...);                     // CreateContainer
//   }));
//   st.Release(id);                                                         // RemoveContainer
//   st.ReleaseAll();                                                        // DestroySandbox
//
// Every storage and device of a request is validated before anything is mounted or
// waited for: a malformed one, or a driver this agent does not handle, fails the request
// with INVALID_ARGUMENT and changes nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "agent.pb.h"
#include "init/config.h"
#include "rpc/call_context.h"
#include "storage/registry.h"
#include "util/status.h"

namespace kata {

class Storages {
 public:
  explicit Storages(const AgentConfig& cfg);

  std::chrono::milliseconds hotplug_timeout() const;
  StorageRegistry& registry() { return registry_; }

  Status AddSandboxStorages(CallContext& ctx,
                            const google::protobuf::RepeatedPtrField<grpc::Storage>& storages);

  // CreateContainer: refuses the request fields this agent does not implement
  // (shared_mounts, the passfd stdio ports) with INVALID_ARGUMENT "unsupported: ...",
  // mounts the storages, finds the devices, and runs create with the request's spec
  // patched for them. If create fails, the storages are released again.
  Status CreateContainerWith(CallContext& ctx, const grpc::CreateContainerRequest& req,
                             const std::function<Status(const grpc::Spec&)>& create);

  // Mounts the request's storages and finds its devices, patching *spec (devices). Returns
  // the name the references are held under until CommitContainer or Release.
  StatusOr<std::string> PrepareContainer(CallContext& ctx, const grpc::CreateContainerRequest& req,
                                         grpc::Spec* spec);
  void CommitContainer(const std::string& token, const std::string& container_id);

  // Drops owner's references (a container id, or a token from PrepareContainer); storages
  // nobody uses any more are unmounted. Errors are logged and returned.
  Status Release(const std::string& owner);
  Status ReleaseAll();

 private:
  StatusOr<std::vector<StorageSpec>> Validate(
      const google::protobuf::RepeatedPtrField<grpc::Storage>& storages) const;
  Status Acquire(CallContext& ctx, const std::string& owner, const std::string& container_id,
                 const std::vector<StorageSpec>& specs);

  const AgentConfig& cfg_;
  StorageRegistry registry_;
  std::atomic<uint64_t> next_token_{1};
};

}  // namespace kata
