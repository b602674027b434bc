#include "init/kernel_modules.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "util/log.h"
#include "util/reaper.h"

namespace kata {
namespace {

constexpr int kModprobeTimeoutMs = 30000;

bool BadWord(const std::string& s) { return s.find('\0') != std::string::npos; }

}  // namespace

Status ValidateKernelModules(const std::vector<KernelModule>& mods) {
  for (size_t i = 0; i < mods.size(); i++) {
    const KernelModule& m = mods[i];
    if (m.name.empty())
      return absl::InvalidArgumentError(StrCat("kernel_modules[", i, "]: empty name"));
    if (BadWord(m.name) || m.name[0] == '-' || m.name.find('/') != std::string::npos ||
        m.name.size() > 255) {
      return absl::InvalidArgumentError(
          StrCat("kernel_modules[", i, "]: \"", m.name, "\" is not a module name"));
    }
    for (size_t j = 0; j < m.parameters.size(); j++) {
      if (BadWord(m.parameters[j]) || m.parameters[j].empty() || m.parameters[j][0] == '-') {
        return absl::InvalidArgumentError(
            StrCat("kernel_modules[", i, "].parameters[", j, "]: not a module parameter"));
      }
    }
  }
  return absl::OkStatus();
}

Status LoadKernelModules(const std::vector<KernelModule>& mods, const std::string& modules_dir) {
  if (mods.empty()) return absl::OkStatus();
  struct utsname u;
  uname(&u);
  std::string dir = StrCat(modules_dir, "/", u.release);
  struct stat st;
  if (stat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        StrCat("kernel_modules: the guest image has no modules for kernel ", u.release, " (", dir,
               " is missing); cannot load ", mods[0].name));
  }
  std::string modprobe;
  for (const char* p :
       {"/sbin/modprobe", "/usr/sbin/modprobe", "/bin/modprobe", "/usr/bin/modprobe"}) {
    if (access(p, X_OK) == 0) {
      modprobe = p;
      break;
    }
  }
  if (modprobe.empty()) {
    return absl::FailedPreconditionError("kernel_modules: the guest image has no modprobe");
  }
  for (const KernelModule& m : mods) {
    std::vector<std::string> argv = {modprobe, "-v", m.name};
    argv.insert(argv.end(), m.parameters.begin(), m.parameters.end());
    ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, {}, 4096, kModprobeTimeoutMs));
    if (r.wait_status != 0) {
      return absl::FailedPreconditionError(StrCat("kernel_modules: modprobe ", m.name, ": ",
                                                  DescribeWaitStatus(r.wait_status), ": ",
                                                  r.output));
    }
    log::Info("kernel module loaded").Kv("module", m.name).Kv("output", r.output);
  }
  return absl::OkStatus();
}

}  // namespace kata
