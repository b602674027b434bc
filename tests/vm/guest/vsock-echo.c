/*
 * vsock-echo: the guest end of the vsock stream tests. A small static program that serves
 * AF_VSOCK connections (one child process per connection) or makes one, and runs a mode:
 *
 *   echo          write back everything read; at end of stream, shut down the write side
 *   sink          read to end of stream, then reply "<bytes> <sha256 hex>\n"
 *   source [N]    send N pseudo-random bytes followed by "<sha256 hex of them>\n" (65 bytes),
 *                 then close; without N, first read a decimal line "N\n" from the peer
 *   count         read to end of stream, then reply "<bytes>\n" (no hashing: for throughput)
 *   blast [N]     send N bytes from a buffer filled once, nothing else (no hashing); without
 *                 N, first read a decimal line "N\n" from the peer
 *   dial          (listen only) read a line "<port> <mode> [N]\n", connect to the host
 *                 (CID 2) on that port, run the mode there, then reply "ok\n" or
 *                 "error <text>\n" on the first connection
 *
 * usage: vsock-echo listen PORT MODE [N]
 *        vsock-echo connect CID PORT MODE [N]
 *
 * Build: gcc -static -O2 -o vsock-echo vsock-echo.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- SHA-256 (FIPS 180-4) ---- */

struct sha256 {
  uint32_t h[8];
  uint64_t len;
  uint8_t buf[64];
  size_t n;
};

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_init(struct sha256 *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->len = 0;
  s->n = 0;
}

static void sha256_block(struct sha256 *s, const uint8_t *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
  uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
  s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len) {
  const uint8_t *p = data;
  s->len += len;
  if (s->n > 0) {
    size_t k = 64 - s->n < len ? 64 - s->n : len;
    memcpy(s->buf + s->n, p, k);
    s->n += k, p += k, len -= k;
    if (s->n < 64) return;
    sha256_block(s, s->buf);
    s->n = 0;
  }
  for (; len >= 64; p += 64, len -= 64) sha256_block(s, p);
  memcpy(s->buf, p, len);
  s->n = len;
}

static void sha256_hex(struct sha256 *s, char out[65]) {
  uint64_t bits = s->len * 8;
  uint8_t pad = 0x80, zero = 0, lenb[8];
  sha256_update(s, &pad, 1);
  while (s->n != 56) sha256_update(s, &zero, 1);
  for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update(s, lenb, 8);
  for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08" PRIx32, s->h[i]);
  out[64] = 0;
}

/* ---- I/O ---- */

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n, len -= (size_t)n;
  }
  return 0;
}

/* Reads one line (without the newline) byte by byte, so nothing after it is consumed. */
static int read_line(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (buf[n] == '\n') break;
    n++;
  }
  buf[n] = 0;
  return (int)n;
}

static char iobuf[256 * 1024];

static int do_echo(int fd) {
  for (;;) {
    ssize_t n = read(fd, iobuf, sizeof iobuf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    if (write_all(fd, iobuf, (size_t)n) < 0) return -1;
  }
  shutdown(fd, SHUT_WR);
  return 0;
}

static int do_sink(int fd) {
  struct sha256 s;
  uint64_t total = 0;
  char hex[65], reply[128];
  sha256_init(&s);
  for (;;) {
    ssize_t n = read(fd, iobuf, sizeof iobuf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    sha256_update(&s, iobuf, (size_t)n);
    total += (uint64_t)n;
  }
  sha256_hex(&s, hex);
  int len = snprintf(reply, sizeof reply, "%" PRIu64 " %s\n", total, hex);
  return write_all(fd, reply, (size_t)len);
}

static int do_count(int fd) {
  uint64_t total = 0;
  char reply[32];
  for (;;) {
    ssize_t n = read(fd, iobuf, sizeof iobuf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    total += (uint64_t)n;
  }
  int len = snprintf(reply, sizeof reply, "%" PRIu64 "\n", total);
  return write_all(fd, reply, (size_t)len);
}

static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x * 0x2545F4914F6CDD1Dull;
}

static int do_source(int fd, const char *arg) {
  char line[64], hex[65];
  uint64_t total;
  if (arg == NULL) {
    if (read_line(fd, line, sizeof line) < 0) return -1;
    arg = line;
  }
  total = strtoull(arg, NULL, 10);
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
  seed |= 1;
  struct sha256 s;
  sha256_init(&s);
  for (uint64_t left = total; left > 0;) {
    size_t k = left < sizeof iobuf ? (size_t)left : sizeof iobuf;
    for (size_t i = 0; i < k; i += 8) {
      uint64_t v = xorshift(&seed);
      memcpy(iobuf + i, &v, k - i < 8 ? k - i : 8);
    }
    sha256_update(&s, iobuf, k);
    if (write_all(fd, iobuf, k) < 0) return -1;
    left -= k;
  }
  sha256_hex(&s, hex);
  hex[64] = '\n';
  return write_all(fd, hex, 65);
}

static int do_blast(int fd, const char *arg) {
  char line[64];
  if (arg == NULL) {
    if (read_line(fd, line, sizeof line) < 0) return -1;
    arg = line;
  }
  uint64_t left = strtoull(arg, NULL, 10), x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= sizeof iobuf; i += 8) {
    uint64_t v = xorshift(&x);
    memcpy(iobuf + i, &v, 8);
  }
  while (left > 0) {
    size_t k = left < sizeof iobuf ? (size_t)left : sizeof iobuf;
    if (write_all(fd, iobuf, k) < 0) return -1;
    left -= k;
  }
  return 0;
}

static int vsock_connect(unsigned cid, unsigned port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int run_mode(int fd, const char *mode, const char *arg);

static int do_dial(int ctl) {
  char line[128], reply[160];
  if (read_line(ctl, line, sizeof line) < 0) return -1;
  char *save = NULL;
  char *port = strtok_r(line, " ", &save);
  char *mode = strtok_r(NULL, " ", &save);
  char *arg = strtok_r(NULL, " ", &save);
  int rc = -1;
  if (port == NULL || mode == NULL || strcmp(mode, "dial") == 0) {
    errno = EINVAL;
  } else {
    int fd = vsock_connect(VMADDR_CID_HOST, (unsigned)strtoul(port, NULL, 10));
    if (fd >= 0) {
      rc = run_mode(fd, mode, arg);
      close(fd);
    }
  }
  int len = rc == 0 ? snprintf(reply, sizeof reply, "ok\n")
                    : snprintf(reply, sizeof reply, "error %s\n", strerror(errno));
  return write_all(ctl, reply, (size_t)len);
}

static int run_mode(int fd, const char *mode, const char *arg) {
  if (strcmp(mode, "echo") == 0) return do_echo(fd);
  if (strcmp(mode, "sink") == 0) return do_sink(fd);
  if (strcmp(mode, "source") == 0) return do_source(fd, arg);
  if (strcmp(mode, "count") == 0) return do_count(fd);
  if (strcmp(mode, "blast") == 0) return do_blast(fd, arg);
  if (strcmp(mode, "dial") == 0) return do_dial(fd);
  errno = EINVAL;
  return -1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: vsock-echo listen PORT MODE [N]\n"
          "       vsock-echo connect CID PORT MODE [N]\n"
          "modes: echo | sink | source [N] | count | blast [N] | dial\n");
  return 2;
}

static int valid_mode(const char *m) {
  return !strcmp(m, "echo") || !strcmp(m, "sink") || !strcmp(m, "source") || !strcmp(m, "count") ||
         !strcmp(m, "blast") || !strcmp(m, "dial");
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "listen") == 0 && valid_mode(argv[3])) {
    const char *mode = argv[3], *arg = argc > 4 ? argv[4] : NULL;
    /* The backlog exceeds the tests' 100 connections at once: under TCG the fork per
     * connection lags behind the host's connects, and a full accept queue answers RST. */
    int l = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_vm a = {.svm_family = AF_VSOCK,
                            .svm_cid = VMADDR_CID_ANY,
                            .svm_port = (unsigned)strtoul(argv[2], NULL, 10)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 256) < 0) {
      fprintf(stderr, "vsock-echo: listen on port %s: %s\n", argv[2], strerror(errno));
      return 1;
    }
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
    printf("vsock-echo: listening on port %s (%s)\n", argv[2], mode);
    fflush(stdout);
    for (;;) {
      int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        fprintf(stderr, "vsock-echo: accept: %s\n", strerror(errno));
        return 1;
      }
      pid_t pid = fork();
      if (pid == 0) {
        close(l);
        _exit(run_mode(fd, mode, arg) == 0 ? 0 : 1);
      }
      close(fd);
    }
  }
  if (argc >= 5 && strcmp(argv[1], "connect") == 0 && valid_mode(argv[4]) &&
      strcmp(argv[4], "dial") != 0) {
    int fd = vsock_connect((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10));
    if (fd < 0) {
      fprintf(stderr, "vsock-echo: connect %s:%s: %s\n", argv[2], argv[3], strerror(errno));
      return 1;
    }
    return run_mode(fd, argv[4], argc > 5 ? argv[5] : NULL) == 0 ? 0 : 1;
  }
  return usage();
}
