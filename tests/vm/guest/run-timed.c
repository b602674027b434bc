// run-timed: runs a command N times, one after the other, and prints the wall time of
// each run in microseconds (one "run <i> <us> <exit status>" line each). Used in the guest
// to time `crun exec` where the agent's own exec is timed from the host.
//
//   run-timed 20 crun exec ctr /bin/true
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: run-timed N COMMAND [ARGS...]\n");
    return 2;
  }
  int n = atoi(argv[1]);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      execvp(argv[2], argv + 2);
      perror("exec");
      _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long us = (b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000;
    printf("run %d %lld %d\n", i, us, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
  }
  return 0;
}
