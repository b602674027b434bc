// Paths inside a rootfs (no root needed: a temp dir with hostile symlinks), the set-up
// socket framing, and a stdio stream's reads through a call context.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "runtime/init_protocol.h"
#include "runtime/path.h"
#include "sandbox/process.h"

using namespace kata;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/kata-unit-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

bool IsDir(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string FdTarget(int fd) {
  char buf[4096];
  ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

TEST_CASE("lexical cleaning of absolute paths") {
  CHECK(*CleanAbsPath("/a//b/./c/") == "/a/b/c");
  CHECK(*CleanAbsPath("/a/b/../c") == "/a/c");
  CHECK(*CleanAbsPath("/") == "/");
  CHECK(!CleanAbsPath("a/b"));
  CHECK(!CleanAbsPath(""));
  CHECK(!CleanAbsPath("/a/../../b"));
  CHECK(*CleanAbsPath("/a/../../b", /*strict=*/false) == "/b");
  CHECK(PathComponents("/a/b") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("MkdirAllInRoot creates inside the root and follows symlinks only inside it") {
  TempDir host, root;
  REQUIRE(mkdir((root.path + "/etc").c_str(), 0755) == 0);
  // Hostile links: absolute to a host directory, relative climbing out, a loop.
  REQUIRE(symlink(host.path.c_str(), (root.path + "/abs").c_str()) == 0);
  REQUIRE(symlink(("../../../../../../.." + host.path).c_str(), (root.path + "/etc/rel").c_str()) ==
          0);
  REQUIRE(symlink("/loop", (root.path + "/loop").c_str()) == 0);
  UniqueFd rootfd(open(root.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(rootfd);

  StatusOr<UniqueFd> fd = MkdirAllInRoot(rootfd.get(), "/abs/x/y");
  REQUIRE(fd.ok());
  CHECK(IsDir(root.path + host.path + "/x/y"));  // made under the root...
  CHECK(!IsDir(host.path + "/x"));               // ...never in the host dir
  CHECK(FdTarget(fd->get()) == root.path + host.path + "/x/y");

  fd = MkdirAllInRoot(rootfd.get(), "/etc/rel/z");
  REQUIRE(fd.ok());
  CHECK(IsDir(root.path + host.path + "/z"));
  CHECK(!IsDir(host.path + "/z"));

  fd = MkdirAllInRoot(rootfd.get(), "/etc/file", /*last_is_file=*/true);
  REQUIRE(fd.ok());
  struct stat st;
  REQUIRE(stat((root.path + "/etc/file").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));

  fd = MkdirAllInRoot(rootfd.get(), "/loop/x");
  CHECK(!fd.ok());
  CHECK(std::string(fd.status().message()).find("ELOOP") != std::string::npos);

  // A file in the way of a directory.
  fd = MkdirAllInRoot(rootfd.get(), "/etc/file/sub");
  CHECK(!fd.ok());
}

TEST_CASE("OpenInRoot resolves as if the root were /") {
  TempDir host, root;
  REQUIRE(symlink(host.path.c_str(), (root.path + "/abs").c_str()) == 0);
  REQUIRE((mkdir((root.path + host.path.substr(0, host.path.rfind('/'))).c_str(), 0755) == 0 ||
           errno == EEXIST));
  UniqueFd rootfd(open(root.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  StatusOr<UniqueFd> fd = OpenInRoot(rootfd.get(), "/abs", O_PATH);
  CHECK(fd.status().code() == absl::StatusCode::kNotFound);  // the host dir is not in the root
  fd = OpenInRoot(rootfd.get(), "/../../..", O_PATH);
  REQUIRE(fd.ok());
  CHECK(FdTarget(fd->get()) == root.path);
}

TEST_CASE("set-up socket frames, with an fd") {
  int sp[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
  UniqueFd a(sp[0]), b(sp[1]);
  kata::init::InitMessage m;
  m.mutable_pid()->set_pid(42);
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  UniqueFd pr(p[0]), pw(p[1]);
  REQUIRE(SendInitMessage(a.get(), m, pw.get()).ok());
  kata::init::InitMessage f;
  f.mutable_failure()->set_step("mounts");
  f.mutable_failure()->set_message(std::string(100000, 'x'));
  REQUIRE(SendInitMessage(a.get(), f).ok());
  a.reset();

  UniqueFd got;
  StatusOr<kata::init::InitMessage> r = RecvInitMessage(b.get(), &got);
  REQUIRE(r.ok());
  CHECK(r->pid().pid() == 42);
  REQUIRE(got);
  CHECK(write(got.get(), "z", 1) == 1);  // the same pipe
  char c = 0;
  CHECK(read(pr.get(), &c, 1) == 1);
  CHECK(c == 'z');
  CHECK((fcntl(got.get(), F_GETFD) & FD_CLOEXEC));
  r = RecvInitMessage(b.get());
  REQUIRE(r.ok());
  CHECK(r->failure().message().size() == 100000);
  r = RecvInitMessage(b.get());
  CHECK(r.status().code() == absl::StatusCode::kNotFound);  // clean end
}

TEST_CASE("FrameReader yields frames as they complete") {
  kata::init::InitMessage m;
  m.mutable_ready();
  std::string two = EncodeInitFrame(m) + EncodeInitFrame(m);
  int sp[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) == 0);
  UniqueFd a(sp[0]), b(sp[1]);
  FrameReader rd;
  kata::init::InitMessage out;
  UniqueFd fd;
  CHECK(*rd.FillFrom(b.get()) == FrameReader::Fill::kWouldBlock);
  REQUIRE(write(a.get(), two.data(), 3) == 3);
  CHECK(*rd.FillFrom(b.get()) == FrameReader::Fill::kData);
  CHECK(!*rd.Next(&out, &fd));
  REQUIRE(write(a.get(), two.data() + 3, two.size() - 3) == static_cast<ssize_t>(two.size() - 3));
  CHECK(*rd.FillFrom(b.get()) == FrameReader::Fill::kData);
  CHECK(*rd.Next(&out, &fd));
  CHECK(out.has_ready());
  CHECK(*rd.Next(&out, &fd));
  CHECK(!*rd.Next(&out, &fd));
  a.reset();
  CHECK(*rd.FillFrom(b.get()) == FrameReader::Fill::kEnd);
}

TEST_CASE("stream reads: bytes of a call that ended are kept for the next one") {
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
  UniqueFd w(p[1]);
  Stream s(UniqueFd(p[0]), "stdout");
  std::atomic<bool> exited{false};
  REQUIRE(write(w.get(), "abcdef", 6) == 6);

  // The call's deadline has passed by the time the bytes are out of the pipe.
  CallContext dead("test/ReadStdout", CallContext::Clock::now() - std::chrono::seconds(1));
  StatusOr<std::string> r = s.Read(dead, 4, exited);
  CHECK(r.status().code() == absl::StatusCode::kDeadlineExceeded);

  CallContext ctx("test/ReadStdout");
  r = s.Read(ctx, 100, exited);
  REQUIRE(r.ok());
  CHECK(*r == "abcd");  // what the dead call read, first
  r = s.Read(ctx, 100, exited);
  REQUIRE(r.ok());
  CHECK(*r == "ef");
  w.reset();
  r = s.Read(ctx, 100, exited);
  REQUIRE(r.ok());
  CHECK(r->empty());  // end of stream
}

TEST_CASE("stream reads end after the process exited and the pipe stays silent") {
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
  UniqueFd w(p[1]);  // a writer that outlives the process
  Stream s(UniqueFd(p[0]), "stdout");
  std::atomic<bool> exited{true};
  CallContext ctx("test/ReadStdout");
  auto t0 = std::chrono::steady_clock::now();
  StatusOr<std::string> r = s.Read(ctx, 100, exited);
  auto dt = std::chrono::steady_clock::now() - t0;
  REQUIRE(r.ok());
  CHECK(r->empty());
  CHECK(dt >= Stream::kDrainAfterExit);
  CHECK(dt < std::chrono::seconds(3));
}

TEST_CASE("stream writes and close") {
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  UniqueFd r(p[0]);
  REQUIRE(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
  Stream s(UniqueFd(p[1]), "stdin");
  CallContext ctx("test/WriteStdin");
  StatusOr<size_t> n = s.Write(ctx, "hello");
  REQUIRE(n.ok());
  CHECK(*n == 5);
  s.Close();
  CHECK(s.closed());
  char buf[16];
  CHECK(read(r.get(), buf, sizeof buf) == 5);
  CHECK(read(r.get(), buf, sizeof buf) == 0);  // the close reached the reader
  CHECK(s.Write(ctx, "x").status().code() == absl::StatusCode::kFailedPrecondition);
}
