// The device program's life on a cgroup, through raw bpf(2) (no libbpf in a static PID 1).
//
//   ASSIGN_OR_RETURN(UniqueFd prog, LoadDeviceProgram(insns));     // verifier log on failure
//   RETURN_IF_ERROR(AttachDeviceProgram(cgroup_dir_fd, prog.get()));
//   ... UpdateContainer:
//   RETURN_IF_ERROR(AttachDeviceProgram(cgroup_dir_fd, new_prog.get(), prog.get()));
//
// Programs are attached with BPF_F_ALLOW_MULTI (as crun and systemd do): an update swaps
// the old program for the new one in place with BPF_F_REPLACE, so there is no moment with
// both or neither attached. The agent keeps each attached program's fd for that.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <vector>

#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

StatusOr<UniqueFd> LoadDeviceProgram(const std::vector<struct bpf_insn>& insns);

// old_prog_fd < 0: attach beside whatever is there; otherwise replace that program.
Status AttachDeviceProgram(int cgroup_fd, int prog_fd, int old_prog_fd = -1);

// The ids of the device programs attached to the cgroup itself (not inherited).
StatusOr<std::vector<uint32_t>> AttachedDevicePrograms(int cgroup_fd);

}  // namespace kata
