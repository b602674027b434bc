// Kernel device events (NETLINK_KOBJECT_UEVENT), recorded from agent start, so a wait for a
// device never misses one that appeared before the request.
//
//   UeventMonitor& m = UeventMonitor::Get();
//   RETURN_IF_ERROR(m.Start());                          // once, at agent start
//   ASSIGN_OR_RETURN(Uevent ev, m.WaitFor(ctx, [](const Uevent& e) { return ...; },
//                                         std::chrono::seconds(3), "block device 02/00"));
//
// The monitor keeps one entry per device path: the last "add" (or "change", "bind", ...)
// event, removed again by "remove". At start, after the socket is bound (so nothing falls
// between), the block and net devices already in sysfs are recorded as if their "add" had
// just been seen: devices probed by the kernel before the agent ran are found like
// hot-plugged ones. Waiters match against the recorded devices and every later event.
//
// Other subsystems (the network's hot-plugged NICs) use the same WaitFor with their own
// matcher; pci_path.h matches a device path against a Kata PCI path.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "rpc/call_context.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct Uevent {
  std::string action;     // add, remove, change, bind, unbind, move, online, offline
  std::string devpath;    // /devices/pci0000:00/0000:00:03.0/0000:01:00.0/virtio2/block/vdb
  std::string subsystem;  // block, net, pci, virtio, scsi, ...
  std::string devname;    // vdb (the /dev node, relative), empty for devices without one
  std::string devtype;    // disk, partition, scsi_device, ...
  std::string interface;  // eth1 (net devices)
  uint64_t seqnum = 0;    // 0 for devices recorded from sysfs
};

// Parses one kernel uevent datagram: "ACTION@DEVPATH\0KEY=VALUE\0...". nullopt for what is
// not a kernel uevent (udev's "libudev" messages, a missing ACTION or DEVPATH).
std::optional<Uevent> ParseUevent(std::string_view datagram);

// A sysfs device directory's "uevent" file (KEY=VALUE lines) as an event for devpath.
Uevent UeventFromSysfs(std::string_view devpath, std::string_view uevent_file, std::string action);

class UeventMonitor {
 public:
  using Matcher = std::function<bool(const Uevent&)>;

  static UeventMonitor& Get();

  UeventMonitor() = default;
  UeventMonitor(const UeventMonitor&) = delete;
  UeventMonitor& operator=(const UeventMonitor&) = delete;

  // Binds the netlink socket, records what sysfs_root (/sys) already has, starts the reader
  // thread. A second call does nothing.
  Status Start(const std::string& sysfs_root = "/sys");
  bool started() const;

  // The first recorded device that matches, or the next to arrive, waiting at most
  // `timeout` (and never past the call's deadline or cancellation). DEADLINE_EXCEEDED
  // "timed out after N ms waiting for <what>" when `timeout` runs out; the call's own end
  // gives its own status. *own_timeout (optional) tells the two apart.
  StatusOr<Uevent> WaitFor(CallContext& ctx, const Matcher& match,
                           std::chrono::milliseconds timeout, std::string_view what,
                           bool* own_timeout = nullptr);

  // Applies an event as if it came from the kernel (the reader thread's path; tests).
  void Record(const Uevent& ev);
  // Whether a device matching is recorded now (no wait).
  std::optional<Uevent> Find(const Matcher& match) const;

 private:
  void ReadLoop();
  void ScanSysfs(const std::string& sysfs_root, const char* cls);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Uevent> devices_;  // mu_: by devpath
  uint64_t generation_ = 0;                // mu_: bumped on every recorded change
  bool started_ = false;                   // mu_
  UniqueFd sock_;
  std::thread reader_;
};

}  // namespace kata
