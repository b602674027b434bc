#include "runtime/exec.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/errors.h"

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
