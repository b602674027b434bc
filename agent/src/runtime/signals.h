// Signals to container processes.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "util/status.h"

namespace kata {

// True if /proc/PID/status text shows sig blocked, ignored or caught (SigBlk, SigIgn,
// SigCgt), as upstream reads it: an init of a pid namespace with none of these never
// gets SIGTERM from outside, so SignalProcess sends SIGKILL instead. Pure.
bool SignalHandledInStatus(std::string_view status_text, int sig);

// The same for a live process (false if its status cannot be read).
bool SignalHandled(pid_t pid, int sig);

// pidfd_send_signal; a process that is already gone is not an error.
Status SendSignal(int pidfd, int sig, std::string_view what);

}  // namespace kata
