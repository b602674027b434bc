// Ephemeral volumes: a tmpfs (or hugetlbfs) the sandbox's containers share.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "runtime/mounts.h"
#include "storage/drivers.h"
#include "storage/mountinfo.h"
#include "util/fs.h"
#include "util/log.h"

namespace kata {
namespace {

constexpr char kHugePagesDir[] = "/sys/kernel/mm/hugepages";

StatusOr<uint64_t> ParseU64(const std::string& what, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(v.c_str(), &end, 10);
  if (v.empty() || errno || *end) {
    return absl::InvalidArgumentError(StrCat(what, "=", v, ": not a number of bytes"));
  }
  return static_cast<uint64_t>(n);
}

// pagesize= and size= (bytes, as the runtime writes them): reserve size/pagesize pages.
Status ReserveHugePages(const StorageSpec& s) {
  std::optional<std::string> ps = OptionValue(s.options, "pagesize");
  std::optional<std::string> sz = OptionValue(s.options, "size");
  if (!ps || !sz) {
    return absl::InvalidArgumentError(
        StrCat("storage ", s.mount_point, ": hugetlbfs needs pagesize= and size= options"));
  }
  ASSIGN_OR_RETURN(uint64_t pagesize, ParseU64("pagesize", *ps));
  ASSIGN_OR_RETURN(uint64_t size, ParseU64("size", *sz));
  if (pagesize < 4096 || size % pagesize) {
    return absl::InvalidArgumentError(StrCat("storage ", s.mount_point, ": size ", size,
                                             " is not a multiple of pagesize ", pagesize));
  }
  const std::string path = StrCat(kHugePagesDir, "/hugepages-", pagesize / 1024, "kB/nr_hugepages");
  const uint64_t pages = size / pagesize;
  RETURN_IF_ERROR(WriteFileString(path, std::to_string(pages)));
  ASSIGN_OR_RETURN(std::string got, ReadFileString(path, 64));
  if (strtoull(got.c_str(), nullptr, 10) != pages) {
    return absl::ResourceExhaustedError(StrCat("only ", strtoull(got.c_str(), nullptr, 10), " of ",
                                               pages, " huge pages of ", pagesize,
                                               " bytes reserved"));
  }
  return absl::OkStatus();
}

// fsgid=N: the volume's group, with setgid so new files inherit it (upstream's ephemeral
// and local rule: group ownership of the root only).
Status ApplyFsGid(const StorageSpec& s) {
  std::optional<std::string> v = OptionValue(s.options, "fsgid");
  if (!v) return absl::OkStatus();
  ASSIGN_OR_RETURN(uint64_t gid, ParseU64("fsgid", *v));
  if (chown(s.mount_point.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) < 0)
    return ErrnoError(errno, "chown ", s.mount_point);
  struct stat st;
  if (stat(s.mount_point.c_str(), &st) < 0) return ErrnoError(errno, "stat ", s.mount_point);
  if (chmod(s.mount_point.c_str(), (st.st_mode & 07777) | S_ISGID) < 0)
    return ErrnoError(errno, "chmod ", s.mount_point);
  return absl::OkStatus();
}

std::vector<std::string> WithoutFsGid(const std::vector<std::string>& options) {
  std::vector<std::string> out;
  for (const std::string& o : options) {
    if (o.rfind("fsgid=", 0) != 0) out.push_back(o);
  }
  return out;
}

}  // namespace

StatusOr<MountedStorage> MountEphemeral(DriverContext&, const StorageSpec& in) {
  StorageSpec s = in;
  if (s.fstype.empty()) s.fstype = "tmpfs";
  if (s.fstype != "tmpfs" && s.fstype != "hugetlbfs") {
    return absl::InvalidArgumentError(StrCat(
        "storage ", s.mount_point, ": ephemeral is tmpfs or hugetlbfs, not '", s.fstype, "'"));
  }
  if (s.fstype == "hugetlbfs") {
    RETURN_IF_ERROR(ReserveHugePages(s));
    if (s.source.empty()) s.source = "nodev";
  }
  if (s.source.empty()) s.source = s.fstype;
  s.options = WithoutFsGid(in.options);
  ASSIGN_OR_RETURN(MountedStorage m, MountStorage(s));
  if (Status st = ApplyFsGid(in); !st.ok()) {
    (void)UndoStorage(m);
    return st;
  }
  return m;
}

Status UpdateEphemeralMounts(const std::vector<StorageSpec>& storages) {
  for (const StorageSpec& in : storages) {
    if (in.driver != "ephemeral") {
      return absl::InvalidArgumentError(StrCat("storage ", in.mount_point, ": driver '", in.driver,
                                               "': only ephemeral storages can be updated"));
    }
  }
  for (const StorageSpec& in : storages) {
    RETURN_IF_ERROR(MkdirAll(in.mount_point, 0750));
    if (in.options.empty()) continue;
    StorageSpec s = in;
    if (s.fstype.empty()) s.fstype = "tmpfs";
    if (s.source.empty()) s.source = s.fstype;
    s.options = WithoutFsGid(in.options);
    ASSIGN_OR_RETURN(std::vector<MountEntry> all, ReadMountInfo());
    const MountEntry* e = FindMount(all, s.mount_point);
    if (e && e->fstype == s.fstype) {
      // Mounted: the new options (a new size=, mode=) apply to the mounted filesystem.
      ASSIGN_OR_RETURN(MountOptions mo, ParseMountOptions(SplitMountOptions(s.options)));
      if (mount(nullptr, s.mount_point.c_str(), nullptr, MS_REMOUNT | mo.flags, mo.data.c_str()) <
          0)
        return ErrnoError(errno, "remount ", s.mount_point, " with ", mo.data);
      log::Info("ephemeral storage updated").Kv("mount_point", s.mount_point).Kv("data", mo.data);
    } else {
      RETURN_IF_ERROR(MountStorage(s).status());
    }
    RETURN_IF_ERROR(ApplyFsGid(in));
  }
  return absl::OkStatus();
}

}  // namespace kata
