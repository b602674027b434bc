#include "storage/container_devices.h"

#include <sys/stat.h>

#include <map>
#include <set>
#include <tuple>

#include "storage/block_devices.h"
#include "util/log.h"

namespace kata {

namespace {

// The address a device is found by, or INVALID_ARGUMENT.
StatusOr<std::string> DeviceAddress(const grpc::Device& d) {
  const std::string& type = d.type();
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("device ", d.id().empty() ? d.vm_path() : d.id(), " (", type, "): ", why));
  };
  if (type.empty()) return bad("no type");
  if (d.container_path().empty() || d.container_path()[0] != '/') {
    return bad("container_path must be an absolute path");
  }
  if (type.rfind("vfio", 0) == 0) {
    return bad("unsupported: vfio devices (PCI passthrough to the container) are not implemented");
  }
  std::string address;
  if (type == "blk" || type == "scsi") {
    // Upstream names the disk by its id (PCI path, SCSI address); a /dev node in vm_path
    // is taken too.
    address = !d.id().empty() ? d.id() : d.vm_path();
  } else if (type == "mmioblk") {
    address = d.vm_path();
  } else {
    return bad("unsupported device type (handled: blk, mmioblk, scsi)");
  }
  if (address.empty()) return bad("no id or vm_path to find it by");
  return address;
}

}  // namespace

Status ValidateDevices(const google::protobuf::RepeatedPtrField<grpc::Device>& devices) {
  for (const grpc::Device& d : devices) RETURN_IF_ERROR(DeviceAddress(d).status());
  return absl::OkStatus();
}

StatusOr<std::vector<DeviceUpdate>> ResolveDevices(
    CallContext& ctx, const google::protobuf::RepeatedPtrField<grpc::Device>& devices,
    std::chrono::milliseconds timeout) {
  std::vector<DeviceUpdate> out;
  for (const grpc::Device& d : devices) {
    const std::string& type = d.type();
    ASSIGN_OR_RETURN(std::string address, DeviceAddress(d));
    StatusOr<std::string> node = FindBlockDevice(ctx, type, address, timeout);
    if (!node.ok()) return Annotate(node.status(), StrCat("device ", d.container_path()));
    struct stat st;
    if (stat(node->c_str(), &st) < 0) return ErrnoError(errno, "stat ", *node);
    DeviceUpdate u;
    u.container_path = d.container_path();
    u.vm_path = *node;
    u.type = 'b';
    u.major = DevMajor(st.st_rdev);
    u.minor = DevMinor(st.st_rdev);
    log::Info("container device found")
        .Kv("container_path", u.container_path)
        .Kv("vm_path", u.vm_path)
        .Kv("major", u.major)
        .Kv("minor", u.minor);
    out.push_back(std::move(u));
  }
  return out;
}

Status PatchSpecDevices(const std::vector<DeviceUpdate>& updates, grpc::Spec* spec) {
  if (updates.empty()) return absl::OkStatus();
  std::map<std::string, const DeviceUpdate*> by_path;
  for (const auto& u : updates) {
    if (!by_path.emplace(u.container_path, &u).second) {
      return absl::InvalidArgumentError(
          StrCat("devices: two devices for container path ", u.container_path));
    }
  }
  grpc::Linux* lx = spec->mutable_linux();
  // (type, host major, host minor) -> the guest device, for the resource rules.
  std::map<std::tuple<std::string, int64_t, int64_t>, const DeviceUpdate*> host_to_guest;
  std::set<std::string> patched;
  for (grpc::LinuxDevice& dev : *lx->mutable_devices()) {
    auto it = by_path.find(dev.path());
    if (it == by_path.end()) continue;
    const DeviceUpdate& u = *it->second;
    std::string type = dev.type().empty() ? std::string(1, u.type) : dev.type();
    if (!host_to_guest.emplace(std::make_tuple(type, dev.major(), dev.minor()), &u).second) {
      return absl::InvalidArgumentError(
          StrCat("devices: two devices with host number ", dev.major(), ":", dev.minor()));
    }
    dev.set_major(u.major);
    dev.set_minor(u.minor);
    if (dev.type().empty()) dev.set_type(std::string(1, u.type));
    patched.insert(u.container_path);
  }
  for (const auto& u : updates) {
    if (!patched.count(u.container_path)) {
      return absl::InvalidArgumentError(
          StrCat("devices: the spec's linux.devices has no entry at ", u.container_path));
    }
  }
  if (lx->has_resources()) {
    for (grpc::LinuxDeviceCgroup& rule : *lx->mutable_resources()->mutable_devices()) {
      auto it = host_to_guest.find(std::make_tuple(rule.type(), rule.major(), rule.minor()));
      if (it == host_to_guest.end()) continue;
      rule.set_major(it->second->major);
      rule.set_minor(it->second->minor);
    }
  }
  for (const auto& u : updates) {
    grpc::LinuxDeviceCgroup* allow = lx->mutable_resources()->add_devices();
    allow->set_allow(true);
    allow->set_type(std::string(1, u.type));
    allow->set_major(u.major);
    allow->set_minor(u.minor);
    allow->set_access("rwm");
  }
  return absl::OkStatus();
}

}  // namespace kata
