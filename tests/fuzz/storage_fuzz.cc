// CreateContainer's storages and devices (a serialized CreateContainerRequest) through the
// storage layer's checks (storage/), the container id check, the PCI path parser, and the
// spec patch for the devices found. Invariants: an accepted storage has an absolute clean
// mount point other than "/"; an accepted PCI path prints back to itself; an accepted id
// has only the characters upstream allows.
#include <cstdint>

#include "agent.pb.h"
#include "fuzz_util.h"
#include "runtime/path.h"
#include "runtime/spec.h"
#include "storage/container_devices.h"
#include "storage/pci_path.h"
#include "storage/storage.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  grpc::CreateContainerRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;

  if (kata::ValidateId("container", req.container_id()).ok()) {
    const std::string& id = req.container_id();
    FUZZ_CHECK(!id.empty() && id.size() <= 256);
    FUZZ_CHECK(id.find('/') == std::string::npos && id != "." && id != "..");
  }

  for (const grpc::Storage& s : req.storages()) {
    kata::StatusOr<kata::StorageSpec> st = kata::ParseStorage(s);
    if (!st.ok()) {
      FUZZ_CHECK(st.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    std::optional<std::string> clean = kata::CleanAbsPath(st->mount_point);
    FUZZ_CHECK(clean && *clean == st->mount_point && st->mount_point != "/");
    FUZZ_CHECK(!st->driver.empty());
    (void)kata::FindStorageDriver(st->driver);
    (void)kata::UnsupportedStorageDriver(st->driver);
    (void)kata::OptionValue(st->options, "size");
  }

  std::vector<kata::DeviceUpdate> updates;
  for (const grpc::Device& d : req.devices()) {
    kata::StatusOr<kata::PciPath> pci = kata::ParsePciPath(d.id());
    if (pci.ok()) {
      std::string text = pci->ToString();
      kata::StatusOr<kata::PciPath> back = kata::ParsePciPath(text);
      FUZZ_CHECK(back.ok() && *back == *pci);
      std::string rest;
      (void)kata::MatchPciDevpath(d.vm_path(), *pci, &rest);
      (void)kata::IsVirtioBlockRest(rest);
    }
    updates.push_back({d.container_path(), "/dev/vdb", 'b', 254, 16});
  }
  kata::Status devs = kata::ValidateDevices(req.devices());
  if (devs.ok()) {
    grpc::Spec spec = req.oci();
    (void)kata::PatchSpecDevices(updates, &spec);
  } else {
    FUZZ_CHECK(devs.code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
