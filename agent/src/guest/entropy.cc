#include "guest/entropy.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <linux/random.h>

#include <cstring>
#include <memory>

#include "util/log.h"
#include "util/unique_fd.h"

namespace kata {

Status AddEntropy(std::string_view data) {
  if (data.empty()) return absl::InvalidArgumentError("ReseedRandomDev: no data");
  if (data.size() > kMaxEntropyBytes) {
    return absl::InvalidArgumentError(
        StrCat("ReseedRandomDev: ", data.size(), " bytes, more than ", kMaxEntropyBytes));
  }
  UniqueFd fd(open("/dev/random", O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoError(errno, "open /dev/random");
  // struct rand_pool_info ends in a flexible array: the bytes follow the two counts.
  std::unique_ptr<char[]> buf(new char[sizeof(rand_pool_info) + data.size()]);
  auto* info = reinterpret_cast<rand_pool_info*>(buf.get());
  info->entropy_count = static_cast<int>(data.size() * 8);
  info->buf_size = static_cast<int>(data.size());
  memcpy(info->buf, data.data(), data.size());
  if (ioctl(fd.get(), RNDADDENTROPY, info) < 0) {
    return ErrnoErrorCode(
        errno == EPERM ? absl::StatusCode::kPermissionDenied : absl::StatusCode::kInternal, errno,
        "RNDADDENTROPY on /dev/random (", data.size(), " bytes)");
  }
  log::Info("entropy added").Kv("bytes", static_cast<uint64_t>(data.size()));
  return absl::OkStatus();
}

}  // namespace kata
