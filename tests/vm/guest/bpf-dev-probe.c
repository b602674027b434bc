// bpf-dev-probe: loads a BPF_PROG_TYPE_CGROUP_DEVICE program (allow everything) and attaches
// it to the cgroup directory given, proving the guest kernel has CGROUP_BPF + BPF_SYSCALL
// for the device controller. Prints "bpf-dev-probe: ok" on success. Guest-side test helper.
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: bpf-dev-probe CGROUP_DIR\n");
    return 2;
  }
  struct bpf_insn prog[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1},
      {.code = BPF_JMP | BPF_EXIT},
  };
  char log[4096] = "";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (unsigned long)prog;
  attr.insn_cnt = 2;
  attr.license = (unsigned long)"GPL";
  attr.log_buf = (unsigned long)log;
  attr.log_size = sizeof log;
  attr.log_level = 1;
  int pfd = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (pfd < 0) {
    perror("bpf-dev-probe: BPF_PROG_LOAD");
    fprintf(stderr, "%s\n", log);
    return 1;
  }
  int cg = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (cg < 0) {
    perror("bpf-dev-probe: open cgroup");
    return 1;
  }
  memset(&attr, 0, sizeof attr);
  attr.target_fd = cg;
  attr.attach_bpf_fd = pfd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  if (syscall(__NR_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0) {
    perror("bpf-dev-probe: BPF_PROG_ATTACH");
    return 1;
  }
  printf("bpf-dev-probe: ok\n");
  return 0;
}
