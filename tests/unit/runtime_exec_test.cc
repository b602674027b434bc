// Exec and terminals, the pure parts: which namespaces an exec joins, what a terminal's
// end of input is, and a pty made and used for real (no container needed).
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "runtime/console.h"
#include "runtime/namespaces.h"
#include "runtime/spec.h"

using namespace kata;

TEST_CASE("an exec joins mount and pid always, and each namespace the spec lists") {
  ContainerSpec s;
  CHECK(ExecJoinFlags(s) == (CLONE_NEWNS | CLONE_NEWPID));
  s.namespaces = {{NsType::kNet, ""}, {NsType::kUts, "/proc/1/ns/uts"}, {NsType::kIpc, ""}};
  CHECK(ExecJoinFlags(s) ==
        (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC));
  CHECK((ExecJoinFlags(s) & CLONE_NEWUSER) == 0);  // not listed: never joined
  s.namespaces.push_back({NsType::kUser, ""});
  s.namespaces.push_back({NsType::kCgroup, ""});
  CHECK((ExecJoinFlags(s) & (CLONE_NEWUSER | CLONE_NEWCGROUP)) ==
        (CLONE_NEWUSER | CLONE_NEWCGROUP));
}

TEST_CASE("end of input on a terminal: one VEOF at a line start, two after a partial line") {
  struct termios t = {};
  t.c_lflag = ICANON;
  t.c_cc[VEOF] = 4;
  CHECK(EofBytes(t, true) == "\x04");
  CHECK(EofBytes(t, false) == "\x04\x04");
  t.c_cc[VEOF] = 26;  // a terminal that uses ^Z
  CHECK(EofBytes(t, false) == "\x1a\x1a");
  t.c_lflag = 0;  // raw: no lines, one byte
  CHECK(EofBytes(t, false) == "\x1a");
}

TEST_CASE("a pty's size is set through the master and read on the slave") {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) {
    WARN("no pty here: skipped");
    return;
  }
  UniqueFd master(m);
  int unlock = 0;
  REQUIRE(ioctl(master.get(), TIOCSPTLCK, &unlock) == 0);
  UniqueFd slave(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  REQUIRE(slave.valid());
  REQUIRE(SetWindowSize(master.get(), 40, 120).ok());
  struct winsize ws = {};
  REQUIRE(ioctl(slave.get(), TIOCGWINSZ, &ws) == 0);
  CHECK(ws.ws_row == 40);
  CHECK(ws.ws_col == 120);
  // The EOF bytes really end a partial line's read, then the input.
  struct termios t;
  REQUIRE(tcgetattr(master.get(), &t) == 0);
  std::string in = "abc" + EofBytes(t, false);
  REQUIRE(write(master.get(), in.data(), in.size()) == static_cast<ssize_t>(in.size()));
  char buf[16];
  CHECK(read(slave.get(), buf, sizeof buf) == 3);
  CHECK(read(slave.get(), buf, sizeof buf) == 0);
}
