// Debug shells for people debugging a guest; off unless the kernel command line asks.
//
//   agent.debug_console          a shell on the serial console (the tty /dev/console points
//                                to), respawned when it exits
//   agent.debug_console_vport=N  a shell per connection to vsock port N, each on a new pty;
//                                the host side is a raw byte stream (agent-ctl console)
//
// The shell is the first of /bin/bash, /bin/sh in the image; an image without one (the
// production initrd) gets a warning and no console. Each shell leads its own session with
// its tty as the controlling terminal (setsid + TIOCSCTTY), so job control works and ^C
// reaches the foreground job through the tty's line discipline. Environment: PATH, HOME=/,
// TERM=vt100, SHELL. A vsock session's pty starts at 24x80; `stty rows R cols C` in the
// shell changes it (the byte stream carries no window-size messages, as upstream's).
//
// When the client disconnects, the pty is closed (a hangup), every process of the shell's
// session gets SIGHUP, and SIGKILL 2 s later if still there; the shell is reaped through
// the Reaper. When the shell exits, its last output is relayed and the connection closed
// (then the rest of its session is ended the same way). A client that half-closes (sends
// nothing more but still reads, as `... | agent-ctl console` does) is passed on as the
// tty's end-of-file character, typed once the shell has read what came before.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace kata {

// The first of /bin/bash, /bin/sh under root that is an executable file; empty if none.
std::string FindDebugShell(const std::string& root = "");

// The shell's environment ("NAME=value").
std::vector<std::string> DebugShellEnv(const std::string& shell);

// The device behind /dev/console from the last word of the kernel's
// /sys/class/tty/console/active text ("tty0 ttyS0\n" -> "/dev/ttyS0"); /dev/console if none.
std::string ConsoleDevice(const std::string& active_text);

// How long to wait before the serial shell is started again: at once after a shell that
// ran for a while (someone typed exit); after one that died within kHealthyAfter, 1 s, then
// doubling up to 60 s while that goes on (a broken shell must not spin).
class RespawnBackoff {
 public:
  static constexpr std::chrono::milliseconds kHealthyAfter{5000};
  static constexpr std::chrono::milliseconds kFirst{1000};
  static constexpr std::chrono::milliseconds kMax{60000};

  std::chrono::milliseconds Next(std::chrono::milliseconds ran_for);

 private:
  std::chrono::milliseconds delay_{0};
};

// Starts the serial console shell (a thread that keeps one running). Logs and returns
// without starting anything when the image has no shell.
void StartSerialDebugConsole();

// Listens on vsock://-1:port and serves a shell per connection.
Status StartVsockDebugConsole(uint32_t port);

}  // namespace kata
