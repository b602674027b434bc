#include "storage/uevent.h"

#include <dirent.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

// The kernel multicasts uevents to group 1 (udev re-broadcasts to group 2, which we never
// join: its messages are udev's, sent after udev's own processing).
constexpr uint32_t kKernelGroup = 1;
// Bursts (a SCSI scan, many disks at boot) can overflow the default buffer; ENOBUFS then
// tells us events were lost and sysfs is read again.
constexpr int kRcvBuf = 4 << 20;

void SetField(Uevent* ev, std::string_view key, std::string_view value) {
  if (key == "ACTION") {
    ev->action = value;
  } else if (key == "DEVPATH") {
    ev->devpath = value;
  } else if (key == "SUBSYSTEM") {
    ev->subsystem = value;
  } else if (key == "DEVNAME") {
    ev->devname = value;
  } else if (key == "DEVTYPE") {
    ev->devtype = value;
  } else if (key == "INTERFACE") {
    ev->interface = value;
  } else if (key == "SEQNUM") {
    ev->seqnum = strtoull(std::string(value).c_str(), nullptr, 10);
  }
}

// readlink of /sys/class/<cls>/<name>: "../../devices/pci0000:00/.../block/vda".
std::string DevpathOfClassEntry(const std::string& link_path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(link_path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string target(buf, static_cast<size_t>(n));
  size_t p = target.find("/devices/");
  return p == std::string::npos ? "" : target.substr(p);
}

}  // namespace

std::optional<Uevent> ParseUevent(std::string_view datagram) {
  // The first string is "ACTION@DEVPATH"; udev's own messages start with "libudev".
  size_t first_end = datagram.find('\0');
  std::string_view head = datagram.substr(0, first_end);
  if (head.find('@') == std::string_view::npos) return std::nullopt;
  Uevent ev;
  size_t pos = first_end == std::string_view::npos ? datagram.size() : first_end + 1;
  while (pos < datagram.size()) {
    size_t end = datagram.find('\0', pos);
    if (end == std::string_view::npos) end = datagram.size();
    std::string_view kv = datagram.substr(pos, end - pos);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) SetField(&ev, kv.substr(0, eq), kv.substr(eq + 1));
    pos = end + 1;
  }
  if (ev.action.empty() || ev.devpath.empty()) return std::nullopt;
  return ev;
}

Uevent UeventFromSysfs(std::string_view devpath, std::string_view uevent_file, std::string action) {
  Uevent ev;
  ev.action = std::move(action);
  ev.devpath = devpath;
  size_t pos = 0;
  while (pos < uevent_file.size()) {
    size_t end = uevent_file.find('\n', pos);
    if (end == std::string_view::npos) end = uevent_file.size();
    std::string_view kv = uevent_file.substr(pos, end - pos);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) SetField(&ev, kv.substr(0, eq), kv.substr(eq + 1));
    pos = end + 1;
  }
  return ev;
}

UeventMonitor& UeventMonitor::Get() {
  static UeventMonitor* m = new UeventMonitor();  // lives as long as the process
  return *m;
}

bool UeventMonitor::started() const {
  std::lock_guard<std::mutex> lk(mu_);
  return started_;
}

Status UeventMonitor::Start(const std::string& sysfs_root) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (started_) return absl::OkStatus();
  }
  UniqueFd s(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT));
  if (!s) return ErrnoError(errno, "uevent socket");
  int size = kRcvBuf;
  if (setsockopt(s.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = kKernelGroup;
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return ErrnoError(errno, "bind the uevent socket");
  sock_ = std::move(s);
  // Bound first, then sysfs: a device added in between is seen twice, never missed.
  ScanSysfs(sysfs_root, "block");
  ScanSysfs(sysfs_root, "net");
  {
    std::lock_guard<std::mutex> lk(mu_);
    started_ = true;
    log::Debug("uevent monitor started")
        .Kv("devices_present", static_cast<uint64_t>(devices_.size()));
  }
  reader_ = std::thread([this] { ReadLoop(); });
  reader_.detach();
  return absl::OkStatus();
}

void UeventMonitor::ScanSysfs(const std::string& sysfs_root, const char* cls) {
  const std::string dir = StrCat(sysfs_root, "/class/", cls);
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<Uevent> found;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string entry = StrCat(dir, "/", e->d_name);
    std::string devpath = DevpathOfClassEntry(entry);
    if (devpath.empty()) continue;
    StatusOr<std::string> text = ReadFileString(entry + "/uevent", 8192);
    if (!text.ok()) continue;
    Uevent ev = UeventFromSysfs(devpath, *text, "add");
    if (ev.subsystem.empty()) ev.subsystem = cls;
    found.push_back(std::move(ev));
  }
  closedir(d);
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& ev : found) devices_.emplace(ev.devpath, std::move(ev));  // a live event wins
  generation_++;
  cv_.notify_all();
}

void UeventMonitor::Record(const Uevent& ev) {
  std::lock_guard<std::mutex> lk(mu_);
  if (ev.action == "remove") {
    devices_.erase(ev.devpath);
  } else if (ev.action == "move") {
    // DEVPATH_OLD is not kept; the device appears under its new path.
    devices_[ev.devpath] = ev;
  } else {
    devices_[ev.devpath] = ev;
  }
  generation_++;
  cv_.notify_all();
}

std::optional<Uevent> UeventMonitor::Find(const Matcher& match) const {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [path, ev] : devices_) {
    if (match(ev)) return ev;
  }
  return std::nullopt;
}

void UeventMonitor::ReadLoop() {
  std::vector<char> buf(64 * 1024);
  while (true) {
    sockaddr_nl from{};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(sock_.get(), &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        log::Warn("uevent buffer overflowed: reading sysfs again");
        ScanSysfs("/sys", "block");
        ScanSysfs("/sys", "net");
        continue;
      }
      log::Error("uevent socket failed; device waits rely on what was recorded")
          .Kv("error", ErrnoText(errno));
      return;
    }
    // Only messages from the kernel (sender port 0) count: a process may send to the group.
    if (from.nl_pid != 0) continue;
    std::optional<Uevent> ev = ParseUevent(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!ev) continue;
    log::Debug("uevent")
        .Kv("action", ev->action)
        .Kv("devpath", ev->devpath)
        .Kv("subsystem", ev->subsystem)
        .Kv("devname", ev->devname)
        .Kv("seqnum", ev->seqnum);
    Record(*ev);
  }
}

StatusOr<Uevent> UeventMonitor::WaitFor(CallContext& ctx, const Matcher& match,
                                        std::chrono::milliseconds timeout, std::string_view what,
                                        bool* own_timeout) {
  if (own_timeout) *own_timeout = false;
  const auto orig = ctx.deadline();
  const auto limit = CallContext::Clock::now() + timeout;
  const bool limited = limit < orig;
  if (limited) ctx.set_deadline(limit);
  std::optional<Uevent> found;
  Status st;
  {
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t seen = ~uint64_t{0};
    st = ctx.Wait(lk, cv_, [&] {
      if (seen == generation_) return false;  // nothing new since the last look
      seen = generation_;
      for (const auto& [path, ev] : devices_) {
        if (match(ev)) {
          found = ev;
          return true;
        }
      }
      return false;
    });
  }
  if (limited) ctx.set_deadline(orig);
  if (st.ok() && found) return *found;
  if (limited && st.code() == absl::StatusCode::kDeadlineExceeded && ctx.Alive().ok()) {
    if (own_timeout) *own_timeout = true;
    return absl::DeadlineExceededError(
        StrCat("timed out after ", timeout.count(), " ms waiting for ", what));
  }
  return Annotate(st, StrCat("waiting for ", what));
}

}  // namespace kata
