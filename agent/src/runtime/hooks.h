// OCI hooks the guest image brings (CreateSandbox.guest_hook_path), run inside the guest.
//
//   ASSIGN_OR_RETURN(GuestHooks hooks, ScanGuestHooks("/usr/share/oci/hooks"));
//   std::string state = HookStateJson({.id = "c1", .status = "created", .pid = 42, ...});
//   RETURN_IF_ERROR(RunHooks(hooks.prestart, "prestart", state));
//
// The Kata runtime strips the spec's own hooks (they run on the host), so the only hooks
// the agent runs are the guest's. The layout is the one upstream's agent scans: one
// subdirectory per hook type under the hook path (prestart/, poststart/, poststop/, and
// here also the other OCI types: createRuntime/, createContainer/, startContainer/);
// every regular, executable file in it is a hook, run in name order with argv
// {file name, hook type}, an empty environment, the container's state (OCI state JSON) on
// stdin, and a timeout of 10 s. Symlinks and non-executable files are skipped.
//
// Where each type runs (docs/ARCHITECTURE.md, "The sandbox"): createRuntime and prestart
// once the container is set up and waits for StartContainer; createContainer and
// startContainer likewise, before the reply to CreateContainer resp. before the exec
// (all in the agent's namespaces); poststart after the exec; poststop once the container
// is removed. A failing prestart, createRuntime, createContainer or startContainer hook
// fails the operation (OCI); poststart and poststop failures are logged only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "util/status.h"

namespace kata {

struct Hook {
  std::string path;               // absolute
  std::vector<std::string> args;  // argv, args[0] included
  std::vector<std::string> env;
  int timeout_s = 0;  // 0: the default
};

inline constexpr int kDefaultHookTimeoutS = 10;

struct GuestHooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
  size_t count() const {
    return prestart.size() + create_runtime.size() + create_container.size() +
           start_container.size() + poststart.size() + poststop.size();
  }
};

// Reads dir/<type>/ for each hook type; a missing subdirectory is no hooks of that type.
// NOT_FOUND when dir itself does not exist, INVALID_ARGUMENT when it is not absolute.
StatusOr<GuestHooks> ScanGuestHooks(const std::string& dir);

// The OCI state of a container, as hooks read it on stdin. Pure.
struct HookState {
  std::string id;
  std::string status;  // creating, created, running, stopped
  int pid = 0;         // 0: left out (the process is gone)
  std::string bundle;
  std::map<std::string, std::string> annotations;
};
std::string HookStateJson(const HookState& s);

// Runs one hook and waits for it (at most its timeout; then SIGKILL). An error names the
// hook, how it ended and the start of its output.
Status RunHook(const Hook& h, const std::string& state_json);
// Runs hooks in order; the first failure ends the run and is returned (kind names the
// hook type in the error).
Status RunHooks(const std::vector<Hook>& hooks, const char* kind, const std::string& state_json);

}  // namespace kata
