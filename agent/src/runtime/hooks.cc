#include "runtime/hooks.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/errors.h"
#include "util/log.h"
#include "util/reaper.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

constexpr size_t kMaxHookOutput = 64 * 1024;
constexpr size_t kOutputInError = 512;

// Regular executable files of dir/type, by name; a missing directory has none.
StatusOr<std::vector<Hook>> ScanType(const std::string& dir, const char* type) {
  std::vector<Hook> out;
  std::string sub = StrCat(dir, "/", type);
  UniqueFd fd(open(sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return out;
    return SysError(errno, "open ", sub);
  }
  DIR* d = fdopendir(fd.release());
  if (!d) return SysError(errno, "read ", sub);
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    // fstatat without following: a symlink is not a hook (it could point anywhere).
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) continue;
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) out.push_back(Hook{StrCat(sub, "/", n), {n, type}, {}, 0});
  return out;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  log::JsonEscape(s, &out);
  out += "\"";
  return out;
}

}  // namespace

StatusOr<GuestHooks> ScanGuestHooks(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') {
    return absl::InvalidArgumentError(StrCat("guest_hook_path \"", dir, "\" is not absolute"));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) < 0) return SysError(errno, "guest_hook_path ", dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(StrCat("guest_hook_path ", dir, " is not a directory"));
  }
  GuestHooks h;
  ASSIGN_OR_RETURN(h.prestart, ScanType(dir, "prestart"));
  ASSIGN_OR_RETURN(h.create_runtime, ScanType(dir, "createRuntime"));
  ASSIGN_OR_RETURN(h.create_container, ScanType(dir, "createContainer"));
  ASSIGN_OR_RETURN(h.start_container, ScanType(dir, "startContainer"));
  ASSIGN_OR_RETURN(h.poststart, ScanType(dir, "poststart"));
  ASSIGN_OR_RETURN(h.poststop, ScanType(dir, "poststop"));
  return h;
}

std::string HookStateJson(const HookState& s) {
  std::string j =
      StrCat("{\"ociVersion\":\"1.0.2\",\"id\":", Quote(s.id), ",\"status\":", Quote(s.status));
  if (s.pid > 0) j += StrCat(",\"pid\":", s.pid);
  j += StrCat(",\"bundle\":", Quote(s.bundle));
  if (!s.annotations.empty()) {
    j += ",\"annotations\":{";
    bool first = true;
    for (const auto& [k, v] : s.annotations) {
      j += StrCat(first ? "" : ",", Quote(k), ":", Quote(v));
      first = false;
    }
    j += "}";
  }
  j += "}";
  return j;
}

Status RunHook(const Hook& h, const std::string& state_json) {
  CommandSpec c;
  c.path = h.path;
  c.argv = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
  c.env = h.env;
  c.input = state_json;
  c.max_output = kMaxHookOutput;
  c.timeout_ms = (h.timeout_s > 0 ? h.timeout_s : kDefaultHookTimeoutS) * 1000;
  ASSIGN_OR_RETURN(CommandResult r, RunCommand(c));
  std::string out = r.output.substr(0, kOutputInError);
  if (r.timed_out) {
    return absl::DeadlineExceededError(
        StrCat("hook ", h.path, ": killed after its timeout of ", c.timeout_ms / 1000, " s"));
  }
  if (r.wait_status != 0) {
    return absl::FailedPreconditionError(StrCat("hook ", h.path, ": ",
                                                DescribeWaitStatus(r.wait_status),
                                                out.empty() ? "" : StrCat(", output: ", out)));
  }
  log::Debug("hook ran").Kv("path", h.path).Kv("output", out);
  return absl::OkStatus();
}

Status RunHooks(const std::vector<Hook>& hooks, const char* kind, const std::string& state_json) {
  for (const Hook& h : hooks) {
    if (Status st = RunHook(h, state_json); !st.ok()) return Annotate(st, StrCat(kind, " hook"));
  }
  return absl::OkStatus();
}

}  // namespace kata
