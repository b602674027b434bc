#include "sandbox/pod.h"

#include "network/dns.h"
#include "util/log.h"

namespace kata {
namespace {

void AddSpecHooks(const google::protobuf::RepeatedPtrField<grpc::Hook>& in,
                  std::vector<Hook>* out) {
  for (const auto& h : in) {
    Hook k;
    k.path = h.path();
    k.args.assign(h.args().begin(), h.args().end());
    k.env.assign(h.env().begin(), h.env().end());
    k.timeout_s = h.timeout() > 0 && h.timeout() < 3600 ? static_cast<int>(h.timeout()) : 0;
    out->push_back(std::move(k));
  }
}

void Append(const std::vector<Hook>& from, std::vector<Hook>* to) {
  to->insert(to->end(), from.begin(), from.end());
}

}  // namespace

void ApplyPodToSpec(const PodView& pod, grpc::Spec* spec) {
  if (spec->has_linux()) {
    for (auto& ns : *spec->mutable_linux()->mutable_namespaces()) {
      if (ns.type() == "ipc") ns.set_path(pod.ipc_ns_path);
      if (ns.type() == "uts") {
        const bool own = !spec->hostname().empty() && spec->hostname() != pod.hostname;
        ns.set_path(own ? "" : pod.uts_ns_path);
        // Joining, the hostname is already the pod's (upstream sets one only in a new uts
        // namespace).
        if (!own && !pod.uts_ns_path.empty()) spec->clear_hostname();
      }
    }
  }
  if (!pod.resolv_conf.empty()) {
    for (auto& m : *spec->mutable_mounts()) {
      if (m.destination() == kGuestResolvConf && m.type() == "bind") m.set_source(pod.resolv_conf);
    }
  }
}

GuestHooks HooksFor(const PodView& pod, const grpc::Spec& spec) {
  GuestHooks h;
  if (spec.has_hooks()) {
    const grpc::Hooks& s = spec.hooks();
    AddSpecHooks(s.prestart(), &h.prestart);
    AddSpecHooks(s.createruntime(), &h.create_runtime);
    AddSpecHooks(s.createcontainer(), &h.create_container);
    AddSpecHooks(s.startcontainer(), &h.start_container);
    AddSpecHooks(s.poststart(), &h.poststart);
    AddSpecHooks(s.poststop(), &h.poststop);
  }
  Append(pod.hooks.prestart, &h.prestart);
  Append(pod.hooks.create_runtime, &h.create_runtime);
  Append(pod.hooks.create_container, &h.create_container);
  Append(pod.hooks.start_container, &h.start_container);
  Append(pod.hooks.poststart, &h.poststart);
  Append(pod.hooks.poststop, &h.poststop);
  return h;
}

void Pod::Set(SharedNamespaces ns, std::string hostname, GuestHooks hooks,
              std::string resolv_conf) {
  std::lock_guard<std::mutex> lk(mu_);
  ns_ = std::move(ns);
  hostname_ = std::move(hostname);
  hooks_ = std::move(hooks);
  resolv_conf_ = std::move(resolv_conf);
}

PodView Pod::View() const {
  std::lock_guard<std::mutex> lk(mu_);
  return PodView{ns_.ipc_path(), ns_.uts_path(), hostname_, resolv_conf_, hooks_};
}

void Pod::Clear() {
  SharedNamespaces ns;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ns = std::move(ns_);
    hooks_ = GuestHooks{};
    hostname_.clear();
    resolv_conf_.clear();
  }
  if (Status st = ns.Release(); !st.ok()) {
    log::Warn("pod namespaces not released").Kv("error", st.ToString());
  }
}

}  // namespace kata
