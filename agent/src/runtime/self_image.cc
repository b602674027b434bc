#include "runtime/self_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "runtime/errors.h"
#include "util/log.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

std::mutex g_mu;
std::atomic<int> g_fd{-1};

}  // namespace

Status SelfImage::Create() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_fd.load() >= 0) return absl::OkStatus();
  UniqueFd exe(open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) return SysError(errno, "open /proc/self/exe");
  struct stat st;
  if (fstat(exe.get(), &st) < 0) return SysError(errno, "stat /proc/self/exe");
  UniqueFd mem(memfd_create("kata-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return SysError(errno, "memfd_create");
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = sendfile(mem.get(), exe.get(), nullptr, static_cast<size_t>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError(errno, "copy /proc/self/exe into the memfd");
    if (n == 0) return SysError(EIO, "copy /proc/self/exe: short read");
    left -= n;
  }
  const int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  if (fcntl(mem.get(), F_ADD_SEALS, seals) < 0) return SysError(errno, "seal the memfd");
  if ((fcntl(mem.get(), F_GET_SEALS) & seals) != seals)
    return SysError(EPERM, "memfd seals did not hold");
  log::Debug("sealed self image").Kv("bytes", static_cast<int64_t>(st.st_size)).Kv("fd", mem.get());
  g_fd.store(mem.release());
  return absl::OkStatus();
}

int SelfImage::Fd() { return g_fd.load(); }

std::string SelfImage::Path() { return StrCat("/proc/self/fd/", g_fd.load()); }

}  // namespace kata
