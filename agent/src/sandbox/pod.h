// What CreateSandbox set up for the whole pod and every container uses: the shared ipc
// and uts namespaces, the guest's OCI hooks and the sandbox's resolv.conf.
//
//   pod.Set(std::move(ns), std::move(hooks), resolv_path);   // CreateSandbox
//   PodView v = pod.View();                                  // CreateContainer
//   ApplyPodToSpec(v, &spec);                                // namespaces, resolv.conf
//   RunHooks(HooksFor(v, spec).prestart, "prestart", state);
//   pod.Clear();                                             // DestroySandbox
//
// Pod::mu_ is a leaf lock (sandbox/sandbox.h's discipline): taken only to copy or swap.
#pragma once

#include <mutex>
#include <string>

#include "oci.pb.h"
#include "runtime/hooks.h"
#include "runtime/shared_namespaces.h"

namespace kata {

// A copy of the pod's settings, for one container's creation.
struct PodView {
  std::string ipc_ns_path, uts_ns_path;  // empty: none (each container gets its own)
  std::string hostname;                  // the sandbox's (in the pod's uts namespace)
  std::string resolv_conf;               // empty: CreateSandbox had no dns
  GuestHooks hooks;
};

// The pod's changes to a container's spec (pure), as upstream's agent makes them: an ipc
// or uts namespace the spec lists is the pod's (whatever path the host gave: host paths
// mean nothing in the guest). A uts namespace is the pod's when the spec names no
// hostname or the sandbox's (as the Kata runtime sends it; the spec's is then not set
// again); a container with a hostname of its own keeps a uts namespace of its own, so it
// never renames the pod. A bind mount onto /etc/resolv.conf takes the sandbox's file.
void ApplyPodToSpec(const PodView& pod, grpc::Spec* spec);

// The spec's own hooks (the Kata runtime normally strips them) followed by the guest's.
GuestHooks HooksFor(const PodView& pod, const grpc::Spec& spec);

class Pod {
 public:
  void Set(SharedNamespaces ns, std::string hostname, GuestHooks hooks, std::string resolv_conf);
  PodView View() const;
  // Unmounts the namespaces; the hooks and dns are forgotten.
  void Clear();

 private:
  mutable std::mutex mu_;
  SharedNamespaces ns_;      // mu_
  std::string hostname_;     // mu_
  GuestHooks hooks_;         // mu_
  std::string resolv_conf_;  // mu_
};

}  // namespace kata
