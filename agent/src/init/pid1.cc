#include "init/pid1.h"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_split.h"
#include "init/debug_console.h"
#include "init/log_port.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

void MountOrWarn(const char* src, const char* dst, const char* type, unsigned long flags,
                 const char* data) {
  mkdir(dst, 0755);
  if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY) {
    log::Warn("mount failed").Kv("type", type).Kv("target", dst).Kv("error", ErrnoText(errno));
  }
}

// Copies the tree at src (an initramfs directory) into dst (on the new tmpfs), removing
// each original once copied so the content is never held twice in memory. Entries on
// another device (mount points: /proc, /sys, /dev, the new root itself) are skipped.
Status MoveTree(const std::string& src, const std::string& dst, dev_t root_dev) {
  DIR* d = opendir(src.c_str());
  if (!d) return ErrnoError(errno, "opendir ", src);
  Status result = absl::OkStatus();
  while (struct dirent* e = readdir(d)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    std::string s = src == "/" ? "/" + std::string(e->d_name) : src + "/" + e->d_name;
    std::string t = dst + "/" + e->d_name;
    struct stat st;
    if (lstat(s.c_str(), &st) < 0) continue;
    if (st.st_dev != root_dev) continue;
    if (S_ISDIR(st.st_mode)) {
      if (mkdir(t.c_str(), st.st_mode & 07777) < 0 && errno != EEXIST) {
        result = ErrnoError(errno, "mkdir ", t);
        break;
      }
      Status sub = MoveTree(s, t, root_dev);
      if (!sub.ok()) {
        result = sub;
        break;
      }
      rmdir(s.c_str());
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlink(s.c_str(), target, sizeof target - 1);
      if (n < 0) continue;
      target[n] = 0;
      if (symlink(target, t.c_str()) < 0) {
        result = ErrnoError(errno, "symlink ", t);
        break;
      }
      unlink(s.c_str());
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd in(open(s.c_str(), O_RDONLY | O_CLOEXEC));
      UniqueFd out(open(t.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777));
      if (!in || !out) {
        result = ErrnoError(errno, "copy ", s);
        break;
      }
      char buf[65536];
      ssize_t n;
      while ((n = read(in.get(), buf, sizeof buf)) > 0) {
        if (!WriteAll(out.get(), std::string_view(buf, static_cast<size_t>(n))).ok()) {
          result = ErrnoError(errno, "write ", t);
          break;
        }
      }
      if (!result.ok()) break;
      unlink(s.c_str());
    } else {
      if (mknod(t.c_str(), st.st_mode, st.st_rdev) < 0) {
        result = ErrnoError(errno, "mknod ", t);
        break;
      }
      unlink(s.c_str());
    }
    if (lchown(t.c_str(), st.st_uid, st.st_gid) < 0) {
      // Best effort: ownership inside the initramfs is root anyway.
    }
  }
  closedir(d);
  return result;
}

// Moves the initramfs content to a tmpfs mounted on / and re-executes the agent there.
// Returns only on failure.
Status Reroot(char** argv) {
  constexpr char kNew[] = "/.newroot";
  struct stat root;
  if (stat("/", &root) < 0) return ErrnoError(errno, "stat /");
  if (mkdir(kNew, 0755) < 0 && errno != EEXIST) return ErrnoError(errno, "mkdir ", kNew);
  if (mount("tmpfs", kNew, "tmpfs", MS_NOATIME, "mode=0755") < 0)
    return ErrnoError(errno, "mount tmpfs on ", kNew);
  RETURN_IF_ERROR(MoveTree("/", kNew, root.st_dev));
  // The early mounts are re-made by the re-executed agent in the new root.
  umount2("/proc", MNT_DETACH);
  umount2("/sys", MNT_DETACH);
  umount2("/dev", MNT_DETACH);
  if (chdir(kNew) < 0) return ErrnoError(errno, "chdir ", kNew);
  if (mount(".", "/", nullptr, MS_MOVE, nullptr) < 0)
    return ErrnoError(errno, "move ", kNew, " onto /");
  if (chroot(".") < 0) return ErrnoError(errno, "chroot");
  if (chdir("/") < 0) return ErrnoError(errno, "chdir /");
  execv("/init", argv);
  return ErrnoError(errno, "re-exec /init");
}

void BringUpLoopback() {
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return;
  struct ifreq ifr = {};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) return;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) {
    log::Warn("cannot bring up lo").Kv("error", ErrnoText(errno));
  }
}

}  // namespace

bool RootIsInitramfs() {
  // The last mountinfo line whose mount point is "/" is the visible root.
  StatusOr<std::string> mi = ReadFileString("/proc/self/mountinfo", 1 << 20);
  if (!mi.ok()) return false;
  std::string fstype;
  for (absl::string_view line : absl::StrSplit(*mi, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 10 || f[4] != "/") continue;
    for (size_t i = 6; i + 1 < f.size(); i++) {
      if (f[i] == "-") {
        fstype = std::string(f[i + 1]);
        break;
      }
    }
  }
  return fstype == "rootfs";
}

void Pid1EarlySetup(int /*argc*/, char** argv) {
  umask(022);
  MountOrWarn("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountOrWarn("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountOrWarn("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");

  if (RootIsInitramfs()) {
    Status st = Reroot(argv);
    // Only reached on failure: go on in the initramfs (containers will fail to pivot_root).
    log::Error("cannot re-root off the initramfs; pivot_root will not work")
        .Kv("error", st.ToString());
  }

  MountOrWarn("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5");
  MountOrWarn("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  MountOrWarn("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  MountOrWarn("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  MountOrWarn("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "nsdelegate");

  // /dev/ptmx must open the devpts instance above, not the devtmpfs node.
  unlink("/dev/ptmx");
  if (symlink("pts/ptmx", "/dev/ptmx") < 0)
    log::Warn("cannot link /dev/ptmx").Kv("error", ErrnoText(errno));
  symlink("/proc/self/fd", "/dev/fd");
  symlink("/proc/self/fd/0", "/dev/stdin");
  symlink("/proc/self/fd/1", "/dev/stdout");
  symlink("/proc/self/fd/2", "/dev/stderr");
  BringUpLoopback();
}

void Pid1Services(const AgentConfig& cfg) {
  // The log port first, so that what the others log is kept for its client.
  if (cfg.log_vport != 0) {
    if (Status st = StartLogPort(cfg.log_vport); !st.ok()) {
      log::Error("cannot start the log port").Kv("error", st.ToString());
    }
  }
  if (cfg.debug_console) StartSerialDebugConsole();
  if (cfg.debug_console_vport != 0) {
    if (Status st = StartVsockDebugConsole(cfg.debug_console_vport); !st.ok()) {
      log::Error("cannot start the debug console on vsock").Kv("error", st.ToString());
    }
  }
}

void PowerOff(std::string_view reason) {
  log::Info("powering off").Kv("reason", reason);
  sync();
  if (getpid() == 1) {
    reboot(RB_POWER_OFF);
    log::Critical("reboot(RB_POWER_OFF) failed").Kv("error", ErrnoText(errno));
    for (;;) pause();
  }
  _exit(0);
}

void WaitForTermination(bool pid1) {
  if (pid1) {
    for (;;) pause();
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("terminating").Kv("signal", sig);
}

}  // namespace kata
