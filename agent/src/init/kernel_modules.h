// CreateSandbox.kernel_modules: modules the pod needs, loaded with the image's modprobe.
//
//   RETURN_IF_ERROR(ValidateKernelModules(mods));   // INVALID_ARGUMENT, nothing run
//   RETURN_IF_ERROR(LoadKernelModules(mods));       // FAILED_PRECONDITION: no modules in
//                                                   // the image, or modprobe refused
//
// Our guest kernel is built without loadable modules, so a request is met only by an
// image that brings /lib/modules/<release> and a modprobe; otherwise it fails clearly
// instead of looking as if it worked.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace kata {

struct KernelModule {
  std::string name;
  std::vector<std::string> parameters;  // "key=value" words, as modprobe takes them
};

Status ValidateKernelModules(const std::vector<KernelModule>& mods);
// modules_dir: where the release's directory is looked for (tests pass their own).
Status LoadKernelModules(const std::vector<KernelModule>& mods,
                         const std::string& modules_dir = "/lib/modules");

}  // namespace kata
