// The agent's sealed in-memory copy of its own binary, from which every container set-up
// process is started.
//
// A process inside a container must never be able to rewrite the agent (the
// CVE-2019-5736 class: a container that opens /proc/PID/exe of a runtime process and
// writes to it). The set-up process runs from a memfd sealed against writing, growing,
// shrinking and further sealing, so its /proc/PID/exe is that memfd and no write to it
// can succeed. It is made once, at agent start (the copy costs the binary's size in
// guest memory), and shared by every set-up process.
//
//   RETURN_IF_ERROR(SelfImage::Create());       // once, in Sandbox::Init()
//   posix_spawn(..., SelfImage::Path(), ...);   // "/proc/self/fd/N"
#pragma once

#include <string>

#include "util/status.h"

namespace kata {

class SelfImage {
 public:
  // Copies /proc/self/exe into a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING) and seals it
  // (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE). Idempotent.
  static Status Create();
  // The memfd, or -1 before Create().
  static int Fd();
  // "/proc/self/fd/N": what posix_spawn executes (works for a close-on-exec memfd: the
  // kernel opens the file before it closes the fds).
  static std::string Path();
};

}  // namespace kata
