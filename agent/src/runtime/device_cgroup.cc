#include "runtime/device_cgroup.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace kata {
namespace {

long Bpf(int cmd, union bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof *attr); }

}  // namespace

StatusOr<UniqueFd> LoadDeviceProgram(const std::vector<struct bpf_insn>& insns) {
  static const char kLicense[] = "Apache-2.0";
  std::string log(16384, '\0');
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uint64_t>(insns.data());
  attr.insn_cnt = static_cast<uint32_t>(insns.size());
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  std::memcpy(attr.prog_name, "kata_devices", sizeof "kata_devices");
  long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  int err = errno;
  // Again with the verifier's log, to say why.
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  log.resize(strnlen(log.c_str(), log.size()));
  if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);
  return ErrnoError(err, "load the device program (", insns.size(), " instructions)",
                    log.empty() ? "" : ": verifier: ", log);
}

Status AttachDeviceProgram(int cgroup_fd, int prog_fd, int old_prog_fd) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (old_prog_fd >= 0) {
    attr.attach_flags |= BPF_F_REPLACE;
    attr.replace_bpf_fd = static_cast<uint32_t>(old_prog_fd);
  }
  if (Bpf(BPF_PROG_ATTACH, &attr) < 0) {
    return ErrnoError(errno, old_prog_fd >= 0 ? "replace" : "attach", " the device program");
  }
  return absl::OkStatus();
}

StatusOr<std::vector<uint32_t>> AttachedDevicePrograms(int cgroup_fd) {
  std::vector<uint32_t> ids(64);
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.query.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
  attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
  if (Bpf(BPF_PROG_QUERY, &attr) < 0) return ErrnoError(errno, "query the device programs");
  ids.resize(std::min<size_t>(attr.query.prog_cnt, ids.size()));
  return ids;
}

}  // namespace kata
