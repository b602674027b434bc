#include "runtime/shared_namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/errors.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/reaper.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

// The helper: a fork-style raw clone of the agent into new ipc and uts namespaces. Until it
// execs nothing (it never does) it may only make raw system calls: it is a copy of one
// thread of a multi-threaded process, so no lock, allocator or library state is usable.
[[noreturn]] void HelperBody(const std::string& hostname, int ready_w, int hold_r) {
  char err = 0;
  if (!hostname.empty() && sethostname(hostname.data(), hostname.size()) < 0) {
    err = static_cast<char>(errno);
  }
  (void)!write(ready_w, &err, 1);
  char b;
  (void)!read(hold_r, &b, 1);  // until the agent has mounted our namespaces (or gave up)
  _exit(0);
}

Status BindNs(pid_t pid, const char* name, const std::string& target) {
  {
    UniqueFd f(open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444));
    if (!f) return SysError(errno, "create ", target);
  }
  std::string src = StrCat("/proc/", pid, "/ns/", name);
  if (mount(src.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    return SysError(errno, "bind ", src, " on ", target);
  }
  return absl::OkStatus();
}

}  // namespace

SharedNamespaces& SharedNamespaces::operator=(SharedNamespaces&& o) noexcept {
  if (this != &o) {
    (void)Release();
    dir_ = std::move(o.dir_);
    o.dir_.clear();
  }
  return *this;
}

StatusOr<SharedNamespaces> SharedNamespaces::Create(const std::string& dir,
                                                    const std::string& hostname) {
  RETURN_IF_ERROR(MkdirAll(dir, 0711));
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return SysError(errno, "pipe2");
  UniqueFd ready_r(p[0]), ready_w(p[1]);
  if (pipe2(p, O_CLOEXEC) < 0) return SysError(errno, "pipe2");
  UniqueFd hold_r(p[0]), hold_w(p[1]);

  ASSIGN_OR_RETURN(pid_t pid,
                   Reaper::Get().Spawn(
                       [&]() -> StatusOr<pid_t> {
                         long r = syscall(SYS_clone, CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD, nullptr,
                                          nullptr, nullptr, nullptr);
                         if (r < 0)
                           return SysError(errno, "clone(ipc,uts) of the namespace helper");
                         if (r == 0) HelperBody(hostname, ready_w.get(), hold_r.get());
                         return static_cast<pid_t>(r);
                       },
                       [](int) {}));
  ready_w.reset();
  hold_r.reset();

  SharedNamespaces ns;
  Status st = absl::OkStatus();
  char err = 0;
  ssize_t n;
  do {
    n = read(ready_r.get(), &err, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    st = absl::InternalError("the namespace helper ended before it was ready");
  } else if (err != 0) {
    st = SysError(err, "sethostname ", hostname, " in the pod's uts namespace");
  } else {
    ns.dir_ = dir;  // from here on, Release undoes what was mounted
    st = BindNs(pid, "ipc", ns.ipc_path());
    if (st.ok()) st = BindNs(pid, "uts", ns.uts_path());
  }
  hold_w.reset();  // the helper exits; the reaper collects it
  if (!st.ok()) {
    (void)ns.Release();
    return st;
  }
  log::Info("pod namespaces created").Kv("ipc", ns.ipc_path()).Kv("uts", ns.uts_path());
  return ns;
}

Status SharedNamespaces::Release() {
  if (dir_.empty()) return absl::OkStatus();
  Status first = absl::OkStatus();
  for (const std::string& p : {ipc_path(), uts_path()}) {
    if (umount2(p.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT && first.ok()) {
      first = SysError(errno, "unmount ", p);
    }
    if (unlink(p.c_str()) < 0 && errno != ENOENT && first.ok())
      first = SysError(errno, "remove ", p);
  }
  dir_.clear();
  return first;
}

}  // namespace kata
