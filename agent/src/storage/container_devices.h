// CreateContainer.devices: block devices the runtime attached for one container.
//
// The runtime copies the host's view into the spec: linux.devices has an entry at the
// device's container_path with the host's major:minor, and linux.resources.devices may
// have rules naming that host major:minor. The guest knows the disk by another number, so
// each device is found (block_devices.h) and the spec patched, as upstream does: the
// linux.devices entry at container_path gets the guest's major:minor, resource rules that
// named the host's number name the guest's, and an allow rule (rwm) for the guest device is
// added. The container's /dev node is then made by the runtime from that entry.
//
//   ASSIGN_OR_RETURN(std::vector<DeviceUpdate> u, ResolveDevices(ctx, req.devices(), timeout));
//   RETURN_IF_ERROR(PatchSpecDevices(u, &spec));   // pure
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "oci.pb.h"
#include "rpc/call_context.h"
#include "util/status.h"

namespace kata {

struct DeviceUpdate {
  std::string container_path;
  std::string vm_path;  // the guest node, "/dev/vdb"
  char type = 'b';
  int64_t major = 0, minor = 0;
};

// The checks of ResolveDevices that need no device (pure).
Status ValidateDevices(const google::protobuf::RepeatedPtrField<grpc::Device>& devices);

// INVALID_ARGUMENT for a device without type or container_path, an unsupported type
// ("unsupported: vfio devices ..."), or an address that does not parse; DEADLINE_EXCEEDED
// when a device does not appear.
StatusOr<std::vector<DeviceUpdate>> ResolveDevices(
    CallContext& ctx, const google::protobuf::RepeatedPtrField<grpc::Device>& devices,
    std::chrono::milliseconds timeout);

// INVALID_ARGUMENT when the spec has no linux.devices entry at a device's container_path
// or two devices name one path.
Status PatchSpecDevices(const std::vector<DeviceUpdate>& updates, grpc::Spec* spec);

}  // namespace kata
