// cg-probe: guest-side helper of the cgroup and device tests, run inside containers.
//
//   cg-probe alloc MIB [hold]   allocate MIB MiB (or "inf": without end) 1 MiB at a time,
//                               touching every page; print "allocated N MiB"; with hold,
//                               wait for a signal afterwards
//   cg-probe forkbomb           every process forks without end (retrying when refused)
//   cg-probe counter FILE MS    append 1, 2, 3, ... to FILE, one line every MS ms
//   cg-probe dev OP ...         device operations, each printing "<op> <path>: ok" or
//                               "<op> <path>: <ERRNO>":
//                                 mknod PATH b|c MAJOR MINOR
//                                 open PATH r|w|rw      (open, then close)
//                                 read PATH             (open read-only, read 16 bytes)
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static const char* errname(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENXIO: return "ENXIO";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EROFS: return "EROFS";
    default: {
      static char b[32];
      snprintf(b, sizeof b, "errno %d", e);
      return b;
    }
  }
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static int alloc(int argc, char** argv) {
  if (argc < 3) return 2;
  long want = strcmp(argv[2], "inf") == 0 ? -1 : atol(argv[2]);
  long page = sysconf(_SC_PAGESIZE);
  long n = 0;
  for (; want < 0 || n < want; n++) {
    char* p = malloc(1 << 20);
    if (!p) {
      printf("malloc failed after %ld MiB\n", n);
      fflush(stdout);
      break;
    }
    for (long off = 0; off < (1 << 20); off += page) p[off] = (char)(n + 1);
    if (want < 0 && n % 32 == 0) {
      printf("allocated %ld MiB\n", n);
      fflush(stdout);
    }
  }
  printf("allocated %ld MiB\n", n);
  fflush(stdout);
  if (argc > 3 && strcmp(argv[3], "hold") == 0) {
    for (;;) pause();
  }
  return 0;
}

static _Noreturn void forkbomb(void) {
  printf("forkbomb: started\n");
  fflush(stdout);
  for (;;) {
    pid_t p = fork();
    if (p < 0) sleep_ms(20);
  }
}

static int counter(int argc, char** argv) {
  if (argc < 4) return 2;
  // runs until killed
  long ms = atol(argv[3]);
  for (long i = 1;; i++) {
    FILE* f = fopen(argv[2], "a");
    if (!f) {
      perror(argv[2]);
      return 1;
    }
    fprintf(f, "%ld\n", i);
    fclose(f);
    sleep_ms(ms);
  }
}

static void report(const char* op, const char* path, int r) {
  if (r < 0) {
    printf("%s %s: %s\n", op, path, errname(errno));
  } else {
    printf("%s %s: ok\n", op, path);
  }
  fflush(stdout);
}

static int dev(int argc, char** argv) {
  for (int i = 2; i < argc;) {
    const char* op = argv[i];
    if (strcmp(op, "mknod") == 0 && i + 4 < argc) {
      const char* path = argv[i + 1];
      mode_t type = argv[i + 2][0] == 'b' ? S_IFBLK : S_IFCHR;
      dev_t d = makedev(atoi(argv[i + 3]), atoi(argv[i + 4]));
      report(op, path, mknod(path, type | 0600, d));
      i += 5;
    } else if (strcmp(op, "open") == 0 && i + 2 < argc) {
      const char* path = argv[i + 1];
      const char* m = argv[i + 2];
      int flags = strcmp(m, "rw") == 0 ? O_RDWR : strcmp(m, "w") == 0 ? O_WRONLY : O_RDONLY;
      int fd = open(path, flags | O_CLOEXEC);
      report(op, path, fd);
      if (fd >= 0) close(fd);
      i += 3;
    } else if (strcmp(op, "read") == 0 && i + 1 < argc) {
      const char* path = argv[i + 1];
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        report("open", path, fd);
      } else {
        char buf[16];
        report(op, path, (int)read(fd, buf, sizeof buf));
        close(fd);
      }
      i += 2;
    } else {
      fprintf(stderr, "cg-probe dev: bad operation at '%s'\n", op);
      return 2;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "alloc") == 0) return alloc(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "forkbomb") == 0) forkbomb();
  if (argc >= 2 && strcmp(argv[1], "counter") == 0) return counter(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "dev") == 0) return dev(argc, argv);
  fprintf(stderr, "usage: cg-probe alloc MIB [hold] | forkbomb | counter FILE MS | dev OP...\n");
  return 2;
}
