// sec-probe: prints what a container process is, one "key value" line each, so the same
// program run by two runtimes (crun and the agent) from the same config.json can be
// compared line by line.
//
//   ids      uid/gid (real effective saved), supplementary groups, umask, cwd, HOME
//   caps     CapInh CapPrm CapEff CapBnd CapAmb (hex, from /proc/self/status)
//   security NoNewPrivs, Seccomp mode and filter count
//   limits   every rlimit (soft hard), oom_score_adj
//   host     hostname
//   ns       the inode of each /proc/self/ns/* link
//   mounts   mount point, fs type and per-mount options of every mount
//   syscalls the result of mkdir (a syscall profiles like to deny) and of getppid
//
// Static, so it runs in any rootfs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static void status_lines(void) {
  static const char* keys[] = {"Umask",  "CapInh",     "CapPrm",  "CapEff",          "CapBnd",
                               "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters", NULL};
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) {
    printf("status unreadable %d\n", errno);
    return;
  }
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char* colon = strchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    for (int i = 0; keys[i]; i++) {
      if (strcmp(line, keys[i]) != 0) continue;
      char* v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      v[strcspn(v, "\n")] = 0;
      printf("%s %s\n", keys[i], v);
    }
  }
  fclose(f);
}

static void limits(void) {
  static const struct {
    const char* name;
    int res;
  } rl[] = {{"RLIMIT_AS", RLIMIT_AS},
            {"RLIMIT_CORE", RLIMIT_CORE},
            {"RLIMIT_CPU", RLIMIT_CPU},
            {"RLIMIT_DATA", RLIMIT_DATA},
            {"RLIMIT_FSIZE", RLIMIT_FSIZE},
            {"RLIMIT_LOCKS", RLIMIT_LOCKS},
            {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
            {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
            {"RLIMIT_NICE", RLIMIT_NICE},
            {"RLIMIT_NOFILE", RLIMIT_NOFILE},
            {"RLIMIT_NPROC", RLIMIT_NPROC},
            {"RLIMIT_RSS", RLIMIT_RSS},
            {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
            {"RLIMIT_RTTIME", RLIMIT_RTTIME},
            {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
            {"RLIMIT_STACK", RLIMIT_STACK}};
  for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
    struct rlimit l;
    if (getrlimit(rl[i].res, &l) < 0) {
      printf("rlimit %s error %d\n", rl[i].name, errno);
      continue;
    }
    printf("rlimit %s ", rl[i].name);
    if (l.rlim_cur == RLIM_INFINITY)
      printf("unlimited ");
    else
      printf("%llu ", (unsigned long long)l.rlim_cur);
    if (l.rlim_max == RLIM_INFINITY)
      printf("unlimited\n");
    else
      printf("%llu\n", (unsigned long long)l.rlim_max);
  }
  char buf[32] = {0};
  int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0) printf("oom_score_adj %s", buf);
  if (fd >= 0) close(fd);
}

static void ids(void) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  printf("uid %u %u %u\ngid %u %u %u\n", r, e, s, gr, ge, gs);
  gid_t groups[256];
  int n = getgroups(256, groups);
  printf("groups");
  for (int i = 0; i < n; i++) printf("%s%u", i ? "," : " ", groups[i]);
  printf("\n");
  char cwd[4096];
  printf("cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
  const char* home = getenv("HOME");
  printf("HOME %s\n", home ? home : "(unset)");
  printf("nnp_prctl %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  printf("pid %d\n", getpid());
}

static void namespaces(void) {
  static const char* ns[] = {
      "cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children",
      "user",   "uts", NULL};
  for (int i = 0; ns[i]; i++) {
    char path[64], target[128];
    snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
      printf("ns %s missing\n", ns[i]);
      continue;
    }
    target[n] = 0;
    printf("ns %s %s\n", ns[i], target);
  }
}

static void mounts(void) {
  FILE* f = fopen("/proc/self/mountinfo", "re");
  if (!f) {
    printf("mountinfo unreadable %d\n", errno);
    return;
  }
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    // id parent maj:min root mountpoint options [optional...] - fstype source superopts
    char* field[6] = {0};
    char* save = NULL;
    char* tok = strtok_r(line, " ", &save);
    for (int i = 0; tok && i < 6; i++) {
      field[i] = tok;
      tok = i < 5 ? strtok_r(NULL, " ", &save) : tok;
    }
    char* fstype = NULL;
    while ((tok = strtok_r(NULL, " \n", &save))) {
      if (strcmp(tok, "-") == 0) {
        fstype = strtok_r(NULL, " \n", &save);
        break;
      }
    }
    if (field[4] && field[5]) printf("mount %s %s %s\n", field[4], fstype ? fstype : "?", field[5]);
  }
  fclose(f);
}

static void syscalls(void) {
  const char* dir = "/tmp/.sec-probe-dir";
  if (syscall(SYS_mkdirat, AT_FDCWD, dir, 0700) == 0) {
    printf("syscall mkdir ok\n");
    rmdir(dir);
  } else {
    printf("syscall mkdir errno %d\n", errno);
  }
  printf("syscall getppid %s\n", syscall(SYS_getppid) >= 0 ? "ok" : "failed");
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  ids();
  status_lines();
  limits();
  struct utsname u;
  if (uname(&u) == 0) printf("hostname %s\n", u.nodename);
  namespaces();
  mounts();
  syscalls();
  fflush(stdout);
  return 0;
}
