// vsockd: a vhost-user vsock device back-end that exposes the guest's vsock as a hybrid
// vsock unix socket (Firecracker / Cloud Hypervisor convention).
//
//   vsockd --vhost-user /run/vm/vhost.sock --uds /run/vm/vsock.sock --guest-cid 3
//   qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=512M,share=on
//       -machine q35,memory-backend=mem
//       -chardev socket,id=vsk,path=/run/vm/vhost.sock -device vhost-user-vsock-pci,chardev=vsk
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "event_loop.h"
#include "hybrid.h"
#include "util/log.h"
#include "vhost_user.h"
#include "vsock_device.h"

namespace kata::vsock {
namespace {

constexpr char kUsage[] =
    "usage: vsockd --vhost-user PATH --uds PATH [--guest-cid N] [options]\n"
    "\n"
    "  --vhost-user PATH      vhost-user socket to listen on (QEMU connects as the client);\n"
    "                         also accepted as --socket-path\n"
    "  --uds PATH             hybrid vsock socket: clients write \"CONNECT <port>\\n\" and get\n"
    "                         \"OK <host port>\\n\"; guest connections to host port P go to "
    "PATH_P\n"
    "  --guest-cid N          the guest's CID (default 3)\n"
    "  --buf-size BYTES       receive buffer advertised per connection (default 262144)\n"
    "  --max-connections N    (default 4096)\n"
    "  --connect-timeout-ms N how long a CONNECT waits for the guest (default 5000)\n"
    "  --mem-slots            offer CONFIGURE_MEM_SLOTS (ADD/REM_MEM_REG)\n"
    "  --log-level LEVEL      debug|info|warn|error (default info)\n"
    "  --print-capabilities   print the back-end's capabilities as JSON and exit\n";

struct Args {
  std::string vhost_user;
  std::string uds;
  VsockOptions vsock;
  VhostUserOptions vhost;
  log::Level level = log::Level::kInfo;
};

template <typename T>
bool ParseNum(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

int Fail(std::string_view msg) {
  fprintf(stderr, "vsockd: %.*s\n%s", static_cast<int>(msg.size()), msg.data(), kUsage);
  return 2;
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view val;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string_view::npos) {
      val = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg != "--mem-slots" && arg != "--print-capabilities" && arg != "--help" &&
               arg != "-h") {
      if (i + 1 >= argc) return Fail(StrCat("missing value for ", arg));
      val = argv[++i];
    }
    if (arg == "--vhost-user" || arg == "--socket-path") {
      a.vhost_user = std::string(val);
    } else if (arg == "--uds") {
      a.uds = std::string(val);
    } else if (arg == "--guest-cid") {
      if (!ParseNum(val, &a.vsock.guest_cid) || a.vsock.guest_cid < 3 ||
          a.vsock.guest_cid >= 0xffffffffu) {
        return Fail("--guest-cid must be a number from 3 to 4294967294");
      }
    } else if (arg == "--buf-size") {
      if (!ParseNum(val, &a.vsock.buf_alloc) || a.vsock.buf_alloc < 4096) {
        return Fail("--buf-size must be a number of bytes, at least 4096");
      }
    } else if (arg == "--max-connections") {
      if (!ParseNum(val, &a.vsock.max_connections) || a.vsock.max_connections == 0) {
        return Fail("--max-connections must be a positive number");
      }
    } else if (arg == "--connect-timeout-ms") {
      if (!ParseNum(val, &a.vsock.connect_timeout_ms) || a.vsock.connect_timeout_ms <= 0) {
        return Fail("--connect-timeout-ms must be a positive number");
      }
    } else if (arg == "--mem-slots") {
      a.vhost.offer_mem_slots = true;
    } else if (arg == "--log-level") {
      if (!log::ParseLevel(val, &a.level)) return Fail(StrCat("unknown log level ", val));
    } else if (arg == "--print-capabilities") {
      printf("{\n  \"type\": \"vsock\",\n  \"features\": []\n}\n");
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    } else {
      return Fail(StrCat("unknown option ", arg));
    }
  }
  if (a.vhost_user.empty() || a.uds.empty()) return Fail("--vhost-user and --uds are required");

  log::SetSource("vsockd");
  log::SetLevel(a.level);
  signal(SIGPIPE, SIG_IGN);

  EventLoop loop;
  if (Status st = loop.Init(); !st.ok()) return Fail(st.ToString());

  // SIGTERM/SIGINT end the loop (the back-end conventions ask for a quick, clean exit).
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) return Fail(ErrnoError(errno, "signalfd").ToString());
  auto sig_handler = loop.Add(sfd.get(), EPOLLIN, [&](uint32_t) {
    struct signalfd_siginfo si;
    if (read(sfd.get(), &si, sizeof si) == sizeof si) {
      log::Info("exiting").Kv("signal", strsignal(static_cast<int>(si.ssi_signo)));
    }
    loop.Stop();
  });
  if (!sig_handler.ok()) return Fail(sig_handler.status().ToString());

  const std::string uds = a.uds;
  VsockDevice device(&loop, a.vsock, [uds](uint32_t port) { return DialHostPort(uds, port); });
  VhostUserServer server(&loop, &device, a.vhost_user, a.vhost);
  HybridListener listener(&loop, a.uds, [&device](UniqueFd fd, uint32_t port) {
    device.ConnectToGuest(std::move(fd), port);
  });
  loop.SetBatchHook([&device] { device.Flush(); });

  // The hybrid socket first: once the vhost-user socket exists (what launchers wait for),
  // clients can connect.
  if (Status st = listener.Start(); !st.ok()) return Fail(st.ToString());
  if (Status st = server.Start(); !st.ok()) return Fail(st.ToString());
  log::Info("listening")
      .Kv("vhost_user", a.vhost_user)
      .Kv("uds", a.uds)
      .Kv("guest_cid", a.vsock.guest_cid);

  Status st = loop.Run();
  unlink(a.vhost_user.c_str());
  unlink(a.uds.c_str());
  if (!st.ok()) {
    log::Error("event loop failed").Kv("error", st.ToString());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kata::vsock

int main(int argc, char** argv) { return kata::vsock::Main(argc, argv); }
