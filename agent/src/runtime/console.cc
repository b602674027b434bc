#include "runtime/console.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime/errors.h"
#include "runtime/path.h"

namespace kata {

StatusOr<Pty> OpenPtyInContainer() {
  UniqueFd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return SysError(errno, "open /");
  Pty p;
  ASSIGN_OR_RETURN(p.master, OpenInRoot(root.get(), "/dev/pts/ptmx", O_RDWR | O_NOCTTY));
  struct stat st;
  if (fstat(p.master.get(), &st) < 0) return SysError(errno, "stat /dev/pts/ptmx");
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2) {
    return SysError(ENOTTY, "/dev/pts/ptmx is not the pty multiplexer (no devpts at /dev/pts?)");
  }
  int unlock = 0;
  if (ioctl(p.master.get(), TIOCSPTLCK, &unlock) < 0) return SysError(errno, "unlock the pty");
  p.slave.reset(ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.slave) return SysError(errno, "open the pty's peer (TIOCGPTPEER)");
  return p;
}

Status SetWindowSize(int fd, uint32_t rows, uint32_t cols) {
  struct winsize ws = {};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return SysError(errno, "TIOCSWINSZ ", rows, "x", cols);
  return absl::OkStatus();
}

Status BecomeControllingTerminal(UniqueFd slave, const ConsoleSize& size, uid_t uid, gid_t gid) {
  if (fchown(slave.get(), uid, gid) < 0) return SysError(errno, "chown the terminal to ", uid);
  if (size.height > 0 && size.width > 0) {
    RETURN_IF_ERROR(SetWindowSize(slave.get(), size.height, size.width));
  }
  for (int fd = 0; fd < 3; fd++) {
    if (dup2(slave.get(), fd) < 0) return SysError(errno, "dup2 the terminal onto ", fd);
  }
  slave.reset();
  if (ioctl(0, TIOCSCTTY, 0) < 0) return SysError(errno, "TIOCSCTTY");
  return absl::OkStatus();
}

std::string EofBytes(const struct termios& t, bool at_line_start) {
  const char eof = t.c_cc[VEOF] ? static_cast<char>(t.c_cc[VEOF]) : '\x04';
  if ((t.c_lflag & ICANON) && !at_line_start) return std::string(2, eof);
  return std::string(1, eof);
}

}  // namespace kata
