#include "network/pci_net.h"

#include <dirent.h>

#include <cstdio>
#include <thread>

namespace kata::net {
namespace {

constexpr std::chrono::milliseconds kPollInterval{20};

// The child of `dir` that is the PCI function 0 of `slot` on any bus: "dddd:bb:ss.0".
std::string ChildInSlot(const std::string& dir, int slot) {
  std::string found;
  DIR* d = opendir(dir.c_str());
  if (!d) return found;
  char want[8];
  snprintf(want, sizeof(want), ":%02x.0", slot);
  while (dirent* e = readdir(d)) {
    std::string_view n(e->d_name);
    // "0000:01:00.0": 12 characters, the slot and function at the end.
    if (n.size() == 12 && n[4] == ':' && n[7] == ':' && n.substr(7) == want) {
      found = dir + "/" + std::string(n);
      break;
    }
  }
  closedir(d);
  return found;
}

// The first entry of a directory that is not . or .., or "".
std::string FirstEntry(const std::string& dir) {
  std::string name;
  DIR* d = opendir(dir.c_str());
  if (!d) return name;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') {
      name = e->d_name;
      break;
    }
  }
  closedir(d);
  return name;
}

}  // namespace

StatusOr<std::vector<int>> ParsePciPath(std::string_view path) {
  std::vector<int> slots;
  std::string_view rest = path;
  while (true) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    int v = 0;
    bool ok = part.size() == 2;
    for (char c : part) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) ok = false;
      v = v * 16 + d;
    }
    if (!ok || v > 0x1f) {
      return absl::InvalidArgumentError(
          StrCat("interface devicePath '", path, "': not a PCI path (slots in hex, e.g. 02/00)"));
    }
    slots.push_back(v);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return slots;
}

StatusOr<std::string> PciNetInterface(const std::string& sysfs_pci_root,
                                      const std::vector<int>& slots) {
  std::string dir = sysfs_pci_root;
  for (int slot : slots) {
    dir = ChildInSlot(dir, slot);
    if (dir.empty()) return absl::NotFoundError("no such PCI device");
  }
  // A plain PCI NIC has net/ itself; a virtio one has it under its virtio device
  // (.../0000:01:00.0/virtio1/net/eth0).
  std::vector<std::string> candidates = {dir + "/net"};
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string_view(e->d_name).substr(0, 6) == "virtio")
        candidates.push_back(dir + "/" + e->d_name + "/net");
    }
    closedir(d);
  }
  for (const std::string& net : candidates) {
    if (std::string name = FirstEntry(net); !name.empty()) return name;
  }
  return absl::NotFoundError(StrCat(dir, " has no network interface"));
}

StatusOr<std::string> WaitForPciNetInterface(std::string_view path,
                                             std::chrono::milliseconds timeout,
                                             const std::string& sysfs_pci_root) {
  ASSIGN_OR_RETURN(std::vector<int> slots, ParsePciPath(path));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    StatusOr<std::string> name = PciNetInterface(sysfs_pci_root, slots);
    if (name.ok()) return name;
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          StrCat("no network interface at PCI path ", path, " after ", timeout.count(), " ms"));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace kata::net
