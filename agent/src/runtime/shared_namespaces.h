// The pod's persistent ipc and uts namespaces, shared by its containers.
//
//   ASSIGN_OR_RETURN(SharedNamespaces ns, SharedNamespaces::Create("/run/sandbox-ns", "pod"));
//   spec ipc entry -> ns.ipc_path()   (joined by each container that lists an ipc namespace)
//   ...
//   ns.Release();                     // DestroySandbox: unmounted and removed
//
// As upstream keeps them: the nsfs files of new namespaces bind-mounted onto <dir>/ipc and
// <dir>/uts, so they live without any process in them. The namespaces are made by a
// helper process (a raw clone with CLONE_NEWIPC | CLONE_NEWUTS that sets the hostname and
// waits), never by unsharing the multi-threaded agent itself: the agent's own ipc and uts
// namespaces stay the guest's. The helper exits once its namespaces are mounted.
#pragma once

#include <string>

#include "util/status.h"

namespace kata {

class SharedNamespaces {
 public:
  SharedNamespaces() = default;
  SharedNamespaces(SharedNamespaces&& o) noexcept { *this = std::move(o); }
  SharedNamespaces& operator=(SharedNamespaces&& o) noexcept;
  ~SharedNamespaces() { (void)Release(); }

  // Needs CAP_SYS_ADMIN. hostname: set in the new uts namespace (empty: left as the kernel
  // gives it, a copy of the guest's).
  static StatusOr<SharedNamespaces> Create(const std::string& dir, const std::string& hostname);

  bool active() const { return !dir_.empty(); }
  std::string ipc_path() const { return active() ? dir_ + "/ipc" : ""; }
  std::string uts_path() const { return active() ? dir_ + "/uts" : ""; }

  // Unmounts (lazily: a set-up process may still hold one open) and removes both files.
  Status Release();

 private:
  std::string dir_;
};

}  // namespace kata
