#include "runtime/exec.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/errors.h"
#include "util/strcat.h"

namespace kata {
namespace {

// 0 if path is an executable regular file for us, else an errno.
int CheckExecutable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return errno;
  if (!S_ISREG(st.st_mode)) return EACCES;
  // Real and effective ids are the same by now (SetIds), so access(2) answers for us.
  if (access(path.c_str(), X_OK) < 0) return errno;
  return 0;
}

}  // namespace

std::string PathFromEnv(const std::vector<std::string>& env) {
  for (auto it = env.rbegin(); it != env.rend(); ++it) {
    if (it->rfind("PATH=", 0) == 0) return it->substr(5);
  }
  return kDefaultPath;
}

StatusOr<std::string> FindExecutable(const ProcessSpec& p) {
  const std::string& name = p.args[0];
  if (name.find('/') != std::string::npos) {
    if (int e = CheckExecutable(name)) return SysError(e, "exec \"", name, "\"");
    return name;
  }
  std::string path = PathFromEnv(p.env);
  int first_err = 0;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string dir = path.substr(i, j - i);
    i = j + 1;
    std::string cand = (dir.empty() ? std::string(".") : dir) + "/" + name;
    int e = CheckExecutable(cand);
    if (e == 0) return cand;
    if (e != ENOENT && e != ENOTDIR && !first_err) first_err = e;
  }
  if (first_err)
    return SysError(first_err, "exec \"", name, "\" (found in $PATH but not executable)");
  return SysError(ENOENT, "exec \"", name, "\": executable file not found in $PATH");
}

Status CheckExecArgs(const std::vector<std::string>& args, const std::vector<std::string>& env,
                     uint64_t stack_limit) {
  constexpr uint64_t kMaxArgStrlen = 32 * 4096;
  constexpr uint64_t kMaxTotal = (8u << 20) / 4 * 3;
  constexpr uint64_t kArgMax = 32 * 4096;  // the floor, whatever the stack limit
  const uint64_t limit = std::max(std::min(stack_limit / 4, kMaxTotal), kArgMax);
  uint64_t total = (args.size() + env.size()) * sizeof(char*);
  for (const auto* list : {&args, &env}) {
    const char* field = list == &args ? "process.args" : "process.env";
    for (size_t i = 0; i < list->size(); ++i) {
      uint64_t n = (*list)[i].size() + 1;
      if (n > kMaxArgStrlen) {
        return absl::InvalidArgumentError(StrCat(field, "[", i, "]: ", n - 1,
                                                 " bytes, more than execve takes in one string (",
                                                 kMaxArgStrlen - 1, ")"));
      }
      total += n;
    }
  }
  if (total > limit) {
    return absl::InvalidArgumentError(
        StrCat("process.args and process.env: ", total, " bytes, more than execve takes (", limit,
               ": a quarter of the ", stack_limit, "-byte stack limit, at most ", kMaxTotal, ")"));
  }
  return absl::OkStatus();
}

Status Exec(const std::string& path, const ProcessSpec& p) {
  std::vector<char*> argv, envp;
  for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : p.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  execve(path.c_str(), argv.data(), envp.data());
  return SysError(errno, "exec ", path);
}

}  // namespace kata
