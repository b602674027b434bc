// ptrace-probe SECONDS: run inside a container (with CAP_SYS_PTRACE) for SECONDS, scanning
// /proc without pause. Every process seen whose command line is the agent's set-up mode
// ("kata-agent init": a process joining this container, before its exec) is attacked on
// every scan: PTRACE_ATTACH and open("/proc/PID/mem"). Every other process (not itself) is
// attached once, as the positive control that ptrace works here at all. Prints one line:
//
//   joiners=N joiner_tries=N joiner_attached=N joiner_mem_opened=N joiner_eperm=N
//   others=N others_attached=N
//
// An attach or open only counts against a joiner when its command line still says it is
// one afterwards (it is stopped while attached, so that read is exact).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 65536

static const char kJoiner[] = "kata-agent\0init";

static int is_joiner(int pid) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n >= (ssize_t)sizeof kJoiner && memcmp(buf, kJoiner, sizeof kJoiner) == 0;
}

// 1: attached and stopped, 0: refused, -1: gone. PTRACE_SEIZE + PTRACE_INTERRUPT, not
// PTRACE_ATTACH: an attach sends SIGSTOP, and one that lands during an execve also gets the
// exec's SIGTRAP; detaching after the first leaves the second pending, stopping the process
// for good.
static int try_attach(int pid, int* err) {
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) {
    *err = errno;
    return errno == ESRCH ? -1 : 0;
  }
  ptrace(PTRACE_INTERRUPT, pid, 0, 0);
  return 1;
}

// Waits for the stop, then detaches, handing back a signal the stop intercepted.
static void detach(int pid) {
  int st = 0;
  if (waitpid(pid, &st, __WALL) != pid) return;
  if (!WIFSTOPPED(st)) return;  // it exited meanwhile
  int sig = (st >> 16) == 0 && WSTOPSIG(st) != SIGTRAP ? WSTOPSIG(st) : 0;
  ptrace(PTRACE_DETACH, pid, 0, (void*)(long)sig);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  static unsigned char seen[MAX_PIDS];  // 1: other, tried; 2: joiner seen
  long joiners = 0, joiner_tries = 0, joiner_attached = 0, joiner_mem = 0, joiner_eperm = 0;
  long others = 0, others_attached = 0;
  int self = getpid();
  double end = now() + seconds;
  while (now() < end) {
    DIR* d = opendir("/proc");
    if (!d) return perror("/proc"), 2;
    struct dirent* e;
    while ((e = readdir(d))) {
      int pid = atoi(e->d_name);
      if (pid <= 0 || pid >= MAX_PIDS || pid == self) continue;
      if (is_joiner(pid)) {
        if (seen[pid] != 2) joiners++;
        seen[pid] = 2;
        joiner_tries++;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          if (is_joiner(pid)) joiner_mem++;
          close(fd);
        } else if (errno == EPERM || errno == EACCES) {
          joiner_eperm++;
        }
        int err = 0;
        int r = try_attach(pid, &err);
        if (r == 1) {
          if (is_joiner(pid)) joiner_attached++;
          detach(pid);
        } else if (r == 0 && err == EPERM) {
          joiner_eperm++;
        }
      } else if (seen[pid] == 0) {
        seen[pid] = 1;
        others++;
        int err = 0;
        if (try_attach(pid, &err) == 1) {
          others_attached++;
          detach(pid);
        }
      }
    }
    closedir(d);
  }
  printf("joiners=%ld joiner_tries=%ld joiner_attached=%ld joiner_mem_opened=%ld joiner_eperm=%ld "
         "others=%ld others_attached=%ld\n",
         joiners, joiner_tries, joiner_attached, joiner_mem, joiner_eperm, others, others_attached);
  return 0;
}
