#include "network/dns.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "util/fs.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

constexpr size_t kMaxEntries = 256;
constexpr size_t kMaxEntryLen = 1024;

}  // namespace

Status ValidateDns(const std::vector<std::string>& lines) {
  if (lines.size() > kMaxEntries) {
    return absl::InvalidArgumentError(
        StrCat("dns: ", lines.size(), " entries, at most ", kMaxEntries));
  }
  for (size_t i = 0; i < lines.size(); i++) {
    const std::string& l = lines[i];
    if (l.size() > kMaxEntryLen) {
      return absl::InvalidArgumentError(
          StrCat("dns[", i, "]: longer than ", kMaxEntryLen, " bytes"));
    }
    if (l.find('\0') != std::string::npos || l.find('\n') != std::string::npos) {
      return absl::InvalidArgumentError(StrCat("dns[", i, "]: contains a NUL or newline"));
    }
  }
  return absl::OkStatus();
}

std::string ResolvConfText(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += StrCat(absl::StripAsciiWhitespace(l), "\n");
  return out;
}

Status WriteSandboxResolvConf(const std::string& path, const std::string& text) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) RETURN_IF_ERROR(MkdirAll(path.substr(0, slash)));
  return WriteFileString(path, text, 0644);
}

Status BindGuestResolvConf(const std::string& path) {
  struct stat st;
  if (lstat(kGuestResolvConf, &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(StrCat(kGuestResolvConf, " is a directory"));
  }
  if (stat(kGuestResolvConf, &st) < 0) {
    // A dangling symlink or nothing: make the file the bind needs.
    UniqueFd f(open(kGuestResolvConf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!f) return ErrnoError(errno, "create ", kGuestResolvConf);
  }
  if (mount(path.c_str(), kGuestResolvConf, nullptr, MS_BIND, nullptr) < 0) {
    return ErrnoError(errno, "bind ", path, " on ", kGuestResolvConf);
  }
  return absl::OkStatus();
}

void UnbindGuestResolvConf() { (void)umount2(kGuestResolvConf, MNT_DETACH); }

}  // namespace kata
