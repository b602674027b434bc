#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/cgroups.h"
#include "runtime/errors.h"
#include "runtime/self_image.h"
#include "runtime/spec.h"
#include "util/log.h"

namespace kata {

Status Sandbox::Init() {
  RETURN_IF_ERROR(SelfImage::Create());
  log::Debug("sandbox ready")
      .Kv("bundle_dir", cfg_.bundle_dir)
      .Kv("cgroup2_only", PureCgroup2())
      .Kv("container_pipe_size", cfg_.container_pipe_size);
  return absl::OkStatus();
}

Status Sandbox::EnableCgroups(uint64_t memory_reserve, OomEvents* oom_events) {
  ASSIGN_OR_RETURN(guest_cgroups_, GuestCgroups::SetUp({memory_reserve}));
  if (Status st = guest_cgroups_->WatchMemoryHotplug(); !st.ok()) {
    log::Warn("cgroups: memory hot-plug not followed").Kv("error", st.ToString());
  }
  oom_watcher_ = std::make_unique<OomWatcher>(oom_events);
  return oom_watcher_->Start();
}

Status Sandbox::CreateSandbox(const std::string& hostname, const std::string& sandbox_id) {
  std::lock_guard<std::mutex> lk(mu_);
  if (created_) {
    return absl::AlreadyExistsError(StrCat("the sandbox ",
                                           sandbox_id_.empty() ? "" : sandbox_id_ + " ",
                                           "already exists (DestroySandbox first)"));
  }
  created_ = true;
  hostname_ = hostname;
  sandbox_id_ = sandbox_id;
  log::Info("sandbox created").Kv("sandbox_id", sandbox_id).Kv("hostname", hostname);
  return absl::OkStatus();
}

void Sandbox::ForgetSandbox() {
  std::lock_guard<std::mutex> lk(mu_);
  created_ = false;
  hostname_.clear();
  sandbox_id_.clear();
}

Status Sandbox::DestroySandbox(CallContext& ctx, std::chrono::seconds term_grace,
                               std::chrono::seconds kill_grace) {
  std::vector<std::shared_ptr<Container>> all;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [id, c] : containers_) all.push_back(c);
  }
  // SIGTERM to every container's init, then the grace period for all of them together
  // (an init that has no handler for it gets SIGKILL: see Container::Signal).
  auto t0 = std::chrono::steady_clock::now();
  for (auto& c : all) {
    if (c->state() != Container::State::kCreating) (void)c->Signal("", SIGTERM);
  }
  CallContext term(ctx.method(), std::min(ctx.deadline(), t0 + term_grace));
  for (auto& c : all) {
    if (c->state() == Container::State::kCreating) continue;
    if (!c->Wait(term, "").ok()) break;  // the grace period is over
  }
  log::Info("DestroySandbox: containers terminated")
      .Kv("ms",
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  // Then SIGKILL for whatever is left (execs included), each container waited for and
  // released, with its poststop hooks.
  Status first = absl::OkStatus();
  for (auto& c : all) {
    if (c->state() == Container::State::kCreating) continue;  // its own failure path cleans up
    Status st = RemoveContainer(ctx, c->id(), kill_grace);
    if (!st.ok()) {
      log::Warn("DestroySandbox: container not removed")
          .Kv("container", c->id())
          .Kv("error", st.ToString());
      if (first.ok()) first = st;
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  created_ = false;
  hostname_.clear();
  sandbox_id_.clear();
  pidns_.reset();
  pidns_owner_.clear();
  log::Info("sandbox destroyed").Kv("containers_left", static_cast<uint64_t>(containers_.size()));
  return first;
}

StatusOr<std::shared_ptr<Container>> Sandbox::Get(const std::string& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError(StrCat("container ", id, " not found"));
  return it->second;
}

void Sandbox::KillAllContainers() {
  std::vector<std::shared_ptr<Container>> all;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [id, c] : containers_) all.push_back(c);
  }
  for (auto& c : all) {
    if (c->state() != Container::State::kCreating) (void)c->Signal("", SIGKILL);
  }
}

size_t Sandbox::container_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return containers_.size();
}

Status Sandbox::CreateContainer(CallContext& ctx, const std::string& id, const std::string& exec_id,
                                const grpc::Spec& spec, bool sandbox_pidns,
                                const std::optional<UserNames>& names) {
  std::shared_ptr<Container> c;
  UniqueFd pidns_copy;
  SpecRewrite rw;
  rw.bundle_dir = cfg_.bundle_dir + "/" + id;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (containers_.count(id))
      return absl::AlreadyExistsError(StrCat("container ", id, " already exists"));
    if (sandbox_pidns) {
      if (pidns_) {
        // A copy of our own for the set-up to open: the sandbox's may close meanwhile.
        pidns_copy.reset(fcntl(pidns_.get(), F_DUPFD_CLOEXEC, 0));
        if (!pidns_copy) return SysError(errno, "dup the sandbox pid namespace fd");
        rw.pid_ns_path = StrCat("/proc/", getpid(), "/fd/", pidns_copy.get());
      } else if (!containers_.empty()) {
        return absl::FailedPreconditionError(
            "sandbox_pidns: the sandbox has no shared pid namespace");
      }
    }
    rw.default_hostname = hostname_;
    c = std::make_shared<Container>(id);
    containers_[id] = c;
  }
  auto drop = [&] {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = containers_.find(id);
    if (it != containers_.end() && it->second == c) containers_.erase(it);
  };

  Container::CreateParams p;
  p.spec = spec;
  PodView pod = pod_.View();
  ApplyPodToSpec(pod, &p.spec);
  ContainerHooks hooks{HooksFor(pod, spec), HookState{id, "created", 0, rw.bundle_dir, {}}};
  for (const auto& [k, v] : spec.annotations()) hooks.state.annotations[k] = v;
  RewriteSpecForInit(rw, &p.spec);
  StatusOr<ContainerSpec> parsed = ParseSpec(p.spec);
  if (!parsed.ok()) {
    drop();
    return parsed.status();
  }
  p.parsed = std::move(*parsed);
  p.parsed.process.names = names;
  p.bundle_dir = rw.bundle_dir;
  p.init_exec_id = exec_id;
  p.pipe_size = cfg_.container_pipe_size;
  p.log_level = static_cast<int>(log::GetLevel());
  if (guest_cgroups_) p.cgroup_parent = guest_cgroups_->containers_parent();
  p.oom_watcher = oom_watcher_.get();
  const bool new_pidns = rw.pid_ns_path.empty();
  if (Status st = c->Create(ctx, std::move(p)); !st.ok()) {
    drop();
    return st;
  }

  // The first container's pid namespace is the sandbox's (upstream's rule: there is no
  // separate pause process); later containers asking for sandbox_pidns join it. Opened
  // outside the lock; still alive after the open means the pid was not recycled.
  UniqueFd ns;
  if (new_pidns) {
    StatusOr<std::shared_ptr<Process>> init = c->FindProcess("");
    if (init.ok()) {
      ns.reset(open(StrCat("/proc/", (*init)->pid(), "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC));
      if (ns && syscall(SYS_pidfd_send_signal, (*init)->pidfd(), 0, nullptr, 0) != 0) ns.reset();
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!pidns_ && ns && containers_.size() == 1) {
      pidns_ = std::move(ns);
      pidns_owner_ = id;
    }
    hooks_[id] = std::move(hooks);
  }
  // The container is set up and waits for StartContainer: the runtime's hooks of the
  // create operation, in OCI's order. One failing undoes the container.
  int pid = 0;
  if (StatusOr<std::shared_ptr<Process>> init = c->FindProcess(""); init.ok()) pid = (*init)->pid();
  Status st = RunContainerHooks(id, &GuestHooks::create_runtime, "createRuntime", "created", pid);
  if (st.ok()) st = RunContainerHooks(id, &GuestHooks::prestart, "prestart", "created", pid);
  if (st.ok())
    st = RunContainerHooks(id, &GuestHooks::create_container, "createContainer", "created", pid);
  if (!st.ok()) {
    if (Status r = c->Remove(ctx, std::chrono::seconds(10)); !r.ok()) {
      log::Warn("container not removed after a failed hook")
          .Kv("container", id)
          .Kv("error", r.ToString());
    }
    drop();
    std::lock_guard<std::mutex> lk(mu_);
    hooks_.erase(id);
    if (pidns_owner_ == id) {
      pidns_.reset();
      pidns_owner_.clear();
    }
    return st;
  }
  return absl::OkStatus();
}

Status Sandbox::RunContainerHooks(const std::string& id, std::vector<Hook> GuestHooks::*which,
                                  const char* kind, const char* status, int pid) {
  std::vector<Hook> hooks;
  HookState state;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = hooks_.find(id);
    if (it == hooks_.end() || (it->second.hooks.*which).empty()) return absl::OkStatus();
    hooks = it->second.hooks.*which;
    state = it->second.state;
  }
  state.status = status;
  state.pid = pid;
  return RunHooks(hooks, kind, HookStateJson(state));
}

Status Sandbox::StartContainer(CallContext& ctx, const std::string& id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Get(id));
  int pid = 0;
  if (StatusOr<std::shared_ptr<Process>> init = c->FindProcess(""); init.ok()) pid = (*init)->pid();
  if (c->state() == Container::State::kCreated) {
    RETURN_IF_ERROR(
        RunContainerHooks(id, &GuestHooks::start_container, "startContainer", "created", pid));
  }
  RETURN_IF_ERROR(c->Start(ctx));
  if (Status st = RunContainerHooks(id, &GuestHooks::poststart, "poststart", "running", pid);
      !st.ok()) {
    log::Warn("poststart hook failed").Kv("container", id).Kv("error", st.ToString());
  }
  return absl::OkStatus();
}

Status Sandbox::RemoveContainer(CallContext& ctx, const std::string& id,
                                std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<Container> c, Get(id));
  RETURN_IF_ERROR(c->Remove(ctx, timeout));
  std::unique_lock<std::mutex> lk(mu_);
  auto it = containers_.find(id);
  if (it != containers_.end() && it->second == c) containers_.erase(it);
  // Its pid namespace died with it: the next container to ask starts a new one.
  if (pidns_owner_ == id) {
    pidns_.reset();
    pidns_owner_.clear();
  }
  lk.unlock();
  // After the container is deleted, before the reply: the poststop hooks.
  if (Status st = RunContainerHooks(id, &GuestHooks::poststop, "poststop", "stopped", 0);
      !st.ok()) {
    log::Warn("poststop hook failed").Kv("container", id).Kv("error", st.ToString());
  }
  lk.lock();
  hooks_.erase(id);
  return absl::OkStatus();
}

}  // namespace kata
