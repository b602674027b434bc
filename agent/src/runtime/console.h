// The terminal of a container process (process.terminal): a pty made inside the
// container, its master handed to the agent.
//
//   ASSIGN_OR_RETURN(Pty pty, OpenPtyInContainer());            // in the container's root
//   Send(Console{}, pty.master);                                // the agent keeps the master
//   RETURN_IF_ERROR(BecomeControllingTerminal(pty.slave, ...)); // stdio, session, size
//
// The pty comes from the container's own devpts instance (/dev/pts/ptmx inside the
// container's root, as runc's console socket does it), so the process sees its terminal
// under its own /dev/pts. The slave is opened from the master with TIOCGPTPEER, never
// by a path the container could have swapped.
//
// On the agent's side a pty's input has no end of its own: closing the master would hang
// the process up. EofBytes says what to write for the process to read end of file.
#pragma once

#include <termios.h>

#include <string>

#include "runtime/spec.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct Pty {
  UniqueFd master, slave;
};

// Opens /dev/pts/ptmx in the current root (the container's, after pivot_root or setns),
// checks it is the pty multiplexer (char 5:2), unlocks it and opens its peer.
StatusOr<Pty> OpenPtyInContainer();

// The slave as the process's terminal: owned by uid:gid, size applied when given, dup'd
// onto 0, 1 and 2, and made the controlling terminal of the caller's session (the caller
// has called setsid). Closes the slave's own fd.
Status BecomeControllingTerminal(UniqueFd slave, const ConsoleSize& size, uid_t uid, gid_t gid);

// TIOCSWINSZ on fd (the master or the slave): the process's foreground group gets SIGWINCH.
Status SetWindowSize(int fd, uint32_t rows, uint32_t cols);

// What to write into the master so the reader of the slave sees end of file. In
// canonical mode, VEOF ends the input only at the start of a line: after a partial line
// it first hands the line over, so two are sent. Without ICANON there is no end of file
// on a terminal: VEOF is sent anyway, as a byte. Pure.
std::string EofBytes(const struct termios& t, bool at_line_start);

}  // namespace kata
