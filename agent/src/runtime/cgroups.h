// A container's cgroup (cgroup v2): created under the containers' parent, the set-up
// process placed in it before it forks the container's init, resources and the device
// program applied when the init is ready (before its exec, as runc does at procReady),
// then updated, frozen, read and removed.
//
//   ASSIGN_OR_RETURN(auto cg, ContainerCgroup::Create(guest->containers_parent(), "c1"));
//   RETURN_IF_ERROR(cg->AddProcess(setup_pid, /*oom_score_adj=*/0));
//   RETURN_IF_ERROR(cg->Apply(resources, device_rules));
//   ...
//   RETURN_IF_ERROR(cg->Update(new_resources));     // all or nothing
//   RETURN_IF_ERROR(cg->Freeze(ctx, true));         // returns once cgroup.events says frozen
//   cg->Kill();                                     // cgroup.kill
//   cg->Destroy();                                  // waits until empty, removes the dirs
//
// Only a pure cgroup v2 hierarchy at /sys/fs/cgroup in the guest is ever written: the
// agent manages cgroups only as PID 1 (runtime/guest_cgroups); on any other host (a v1 or
// hybrid layout, such as the machines the host test tier runs on) nothing here is used.
//
// Thread safety: Update, Apply and Stats are serialized by the object's own lock (a leaf);
// Freeze waits without it. Kill and Destroy may be called from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "oci.pb.h"
#include "rpc/call_context.h"
#include "runtime/cgroup_config.h"
#include "runtime/device_filter.h"
#include "runtime/spec.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

inline constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

// statfs("/sys/fs/cgroup") is cgroup2 (CGROUP2_SUPER_MAGIC).
bool PureCgroup2();

// What a container's spec asks of its cgroup, validated (INVALID_ARGUMENT naming the field).
struct ContainerCgroupSpec {
  std::string relative_path;  // under the containers' parent
  CgroupResources resources;
  std::vector<DeviceRule> device_rules;  // the spec's, or DefaultDeviceRules
  bool default_device_rules = false;
  int oom_score_adj = 0;  // process.oomScoreAdj, for the set-up process and so the container
};
StatusOr<ContainerCgroupSpec> ParseContainerCgroupSpec(const grpc::Spec& spec,
                                                       const ContainerSpec& parsed,
                                                       std::string_view container_id);

// One write(2) of the whole value to an existing cgroup file (never created).
Status WriteCgroupFile(int dir_fd, const std::string& file, std::string_view value,
                       std::string_view dir_path);
// The file's content; NOT_FOUND if it does not exist.
StatusOr<std::string> ReadCgroupFile(int dir_fd, const std::string& file,
                                     std::string_view dir_path);

// Writes "+c1 +c2 ..." for every controller of dir's cgroup.controllers to its
// cgroup.subtree_control; controllers the kernel refuses are logged and skipped.
Status EnableControllers(const std::string& dir);

class ContainerCgroup {
 public:
  // Creates parent/relative (each missing level with every controller enabled for its
  // children). A leaf that already exists is reused if empty, refused if it has processes.
  static StatusOr<std::unique_ptr<ContainerCgroup>> Create(const std::string& parent,
                                                           const std::string& relative);
  ~ContainerCgroup();

  const std::string& path() const { return path_; }

  // Moves pid into the cgroup and sets its oom_score_adj (the agent's is -1000, and a
  // child inherits it).
  Status AddProcess(pid_t pid, int oom_score_adj);
  // The first configuration: the files, then the device program.
  Status Apply(const CgroupResources& r, const std::vector<DeviceRule>& device_rules);
  // UpdateContainer: the files given, then the device rules given (appended to the current
  // ones: the last match wins, so a list that starts with "deny a" replaces them all). On
  // any failure every file already written gets its previous value back and the old device
  // program stays attached.
  Status Update(const CgroupResources& r);
  // Writes cgroup.freeze and waits (within the call, at most `most`) until cgroup.events
  // says frozen 1 (or 0). A freeze that does not complete is undone.
  Status Freeze(CallContext& ctx, bool frozen,
                std::chrono::milliseconds most = std::chrono::seconds(10));
  // SIGKILL to every process in the cgroup (cgroup.kill).
  Status Kill();
  // Kills what is left, waits up to `most` for the cgroup to empty, and removes it and the
  // levels above it that are left empty. Later calls on the object fail (the directory
  // is gone) but are safe.
  Status Destroy(std::chrono::milliseconds most = std::chrono::seconds(5));

  Status Stats(grpc::CgroupStats* out);
  // How many device programs are attached to this cgroup (1 once applied).
  StatusOr<size_t> DeviceProgramCount();
  std::vector<DeviceRule> device_rules() const;

 private:
  ContainerCgroup() = default;
  StatusOr<bool> Populated();
  Status WriteAll(const std::vector<CgroupWrite>& writes, std::vector<CgroupWrite>* undo);
  void Restore(const std::vector<CgroupWrite>& undo);
  StatusOr<UniqueFd> BuildDeviceProgram(const std::vector<DeviceRule>& rules);

  std::string path_, parent_;
  std::vector<std::string> created_;  // levels made by Create, outermost first
  UniqueFd dir_;  // open until the object dies (a removed cgroup's fd is harmless)
  std::atomic<bool> destroyed_{false};
  mutable std::mutex mu_;                 // guards the members below; a leaf
  UniqueFd device_prog_;                  // mu_: attached to dir_
  std::vector<DeviceRule> device_rules_;  // mu_: what device_prog_ enforces
};

}  // namespace kata
