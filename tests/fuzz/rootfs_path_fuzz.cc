// Path resolution inside a container's rootfs (runtime/path) against a rootfs whose
// symlinks point everywhere: absolute, relative above the root, at each other, at /proc.
// Invariants: CleanAbsPath's result is clean and stable; whatever MkdirAllInRoot and
// OpenInRoot return is inside the root, and nothing appears outside it.
//
// Input: one flags byte (bit 0: the last component is a file), then the path (up to 512
// bytes, cut at the first NUL). What an input created is removed before the next one.
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "fuzz_util.h"
#include "runtime/path.h"
#include "util/log.h"

namespace {

std::string g_base, g_root, g_outside;
int g_root_fd = -1;
std::set<std::string> g_preset;  // paths (relative to the root) that belong to the fixture

void Must(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::abort();
  }
}

void MakeFixture() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/kata-fuzz-path-XXXXXX";
  Must(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  g_base = tmpl;
  g_root = g_base + "/root";
  g_outside = g_base + "/outside";
  Must(mkdir(g_root.c_str(), 0755) == 0, "mkdir root");
  Must(mkdir(g_outside.c_str(), 0755) == 0, "mkdir outside");
  struct Entry {
    const char* path;
    char kind;  // d dir, f file, l symlink
    const char* target;
  };
  static const Entry kEntries[] = {
      {"etc", 'd', nullptr},
      {"etc/passwd", 'f', nullptr},
      {"file", 'f', nullptr},
      {"deep", 'd', nullptr},
      {"deep/x", 'd', nullptr},
      {"abs", 'l', "/"},
      {"up", 'l', "../../../../.."},
      {"out", 'l', "../outside"},
      {"tmpabs", 'l', "/tmp"},
      {"self", 'l', "self"},
      {"a", 'l', "b"},
      {"b", 'l', "a"},
      {"proc", 'l', "/proc/self/root"},
      {"deep/x/back", 'l', "../../.."},
      {"deep/x/etc", 'l', "/etc/passwd"},
      {"dangling", 'l', "/nowhere/at/all"},
  };
  for (const Entry& e : kEntries) {
    std::string p = g_root + "/" + e.path;
    if (e.kind == 'd') Must(mkdir(p.c_str(), 0755) == 0, p.c_str());
    if (e.kind == 'f') {
      int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      Must(fd >= 0, p.c_str());
      close(fd);
    }
    if (e.kind == 'l') Must(symlink(e.target, p.c_str()) == 0, p.c_str());
    g_preset.insert(e.path);
  }
  g_root_fd = open(g_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  Must(g_root_fd >= 0, "open root");
}

int RemoveExtra(const char* path, const struct stat*, int type, struct FTW*) {
  std::string p(path);
  if (p == g_root || g_preset.count(p.substr(g_root.size() + 1))) return 0;
  if (type == FTW_DP) {
    rmdir(path);
  } else {
    unlink(path);
  }
  return 0;
}

// What an input made, removed; anything under outside/ is an escape.
void Reset() {
  nftw(g_root.c_str(), RemoveExtra, 16, FTW_DEPTH | FTW_PHYS);
  int n = 0;
  std::string marker;
  if (DIR* d = opendir(g_outside.c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
        ++n;
        marker = e->d_name;
      }
    }
    closedir(d);
  }
  if (n != 0) std::fprintf(stderr, "created outside the root: %s\n", marker.c_str());
  FUZZ_CHECK(n == 0);
}

bool InsideRoot(int fd) {
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return false;
  std::string t(target, static_cast<size_t>(n));
  bool inside = t == g_root || t.compare(0, g_root.size() + 1, g_root + "/") == 0;
  if (!inside) std::fprintf(stderr, "resolved outside the root: %s\n", t.c_str());
  return inside;
}

void CheckClean(const std::string& path) {
  std::optional<std::string> c = kata::CleanAbsPath(path, /*strict=*/false);
  if (!c) {
    FUZZ_CHECK(path.empty() || path[0] != '/');
    return;
  }
  FUZZ_CHECK(!c->empty() && (*c)[0] == '/');
  FUZZ_CHECK(c->find("//") == std::string::npos);
  FUZZ_CHECK(*c == "/" || c->back() != '/');
  for (const std::string& comp : kata::PathComponents(*c)) {
    FUZZ_CHECK(!comp.empty() && comp != "." && comp != "..");
  }
  FUZZ_CHECK(kata::CleanAbsPath(*c) == c);  // stable, and strict accepts it
  std::optional<std::string> strict = kata::CleanAbsPath(path, /*strict=*/true);
  FUZZ_CHECK(!strict || strict == c);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kata::log::SetLevel(kata::log::Level::kCritical);
  MakeFixture();
  std::atexit([] {
    nftw(
        g_base.c_str(),
        [](const char* p, const struct stat*, int type, struct FTW*) {
          return type == FTW_DP ? rmdir(p) : unlink(p);
        },
        16, FTW_DEPTH | FTW_PHYS);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool last_is_file = data[0] & 1;
  std::string path(reinterpret_cast<const char*>(data + 1), std::min<size_t>(size - 1, 512));
  path = path.substr(0, path.find('\0'));

  CheckClean(path);
  {
    kata::StatusOr<kata::UniqueFd> fd = kata::OpenInRoot(g_root_fd, path, O_PATH);
    if (fd.ok()) FUZZ_CHECK(InsideRoot(fd->get()));
  }
  {
    kata::StatusOr<kata::UniqueFd> fd = kata::MkdirAllInRoot(g_root_fd, path, last_is_file);
    if (fd.ok()) FUZZ_CHECK(InsideRoot(fd->get()));
  }
  Reset();
  return 0;
}
