#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "init/debug_console.h"

using kata::RespawnBackoff;
using std::chrono::milliseconds;

TEST_CASE("respawn back-off: at once after a long-lived shell") {
  RespawnBackoff b;
  CHECK(b.Next(milliseconds(60000)).count() == 0);
  CHECK(b.Next(RespawnBackoff::kHealthyAfter).count() == 0);
}

TEST_CASE("respawn back-off: doubles while the shell dies at start, up to the cap") {
  RespawnBackoff b;
  CHECK(b.Next(milliseconds(10)) == RespawnBackoff::kFirst);
  CHECK(b.Next(milliseconds(10)) == RespawnBackoff::kFirst * 2);
  CHECK(b.Next(milliseconds(10)) == RespawnBackoff::kFirst * 4);
  milliseconds d{0};
  for (int i = 0; i < 20; i++) d = b.Next(milliseconds(10));
  CHECK(d == RespawnBackoff::kMax);
  // A healthy run resets it.
  CHECK(b.Next(milliseconds(6000)).count() == 0);
  CHECK(b.Next(milliseconds(10)) == RespawnBackoff::kFirst);
}

TEST_CASE("the console device is the last one the kernel lists") {
  CHECK(kata::ConsoleDevice("ttyS0\n") == "/dev/ttyS0");
  CHECK(kata::ConsoleDevice("tty0 ttyS0\n") == "/dev/ttyS0");
  CHECK(kata::ConsoleDevice("hvc0 ttyS1") == "/dev/ttyS1");
  CHECK(kata::ConsoleDevice("") == "/dev/console");
  CHECK(kata::ConsoleDevice("\n") == "/dev/console");
  CHECK(kata::ConsoleDevice("../etc/passwd") == "/dev/console");
}

TEST_CASE("the debug shell is the first of /bin/bash, /bin/sh that can run") {
  char tmpl[] = "/tmp/kata-shell-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string root = tmpl;
  REQUIRE(mkdir((root + "/bin").c_str(), 0755) == 0);
  CHECK(kata::FindDebugShell(root).empty());

  auto make = [&](const std::string& name, mode_t mode) {
    std::ofstream(root + name) << "#!/bin/true\n";
    REQUIRE(chmod((root + name).c_str(), mode) == 0);
  };
  make("/bin/sh", 0755);
  CHECK(kata::FindDebugShell(root) == "/bin/sh");
  make("/bin/bash", 0644);                         // not executable: skipped
  CHECK(kata::FindDebugShell(root) == "/bin/sh");  // even for root: no x bit at all
  REQUIRE(chmod((root + "/bin/bash").c_str(), 0755) == 0);
  CHECK(kata::FindDebugShell(root) == "/bin/bash");

  unlink((root + "/bin/bash").c_str());
  REQUIRE(mkdir((root + "/bin/bash").c_str(), 0755) == 0);  // a directory is no shell
  CHECK(kata::FindDebugShell(root) == "/bin/sh");

  rmdir((root + "/bin/bash").c_str());
  unlink((root + "/bin/sh").c_str());
  rmdir((root + "/bin").c_str());
  rmdir(root.c_str());
}

TEST_CASE("the debug shell's environment") {
  auto env = kata::DebugShellEnv("/bin/sh");
  auto has = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  CHECK(has("HOME=/"));
  CHECK(has("TERM=vt100"));
  CHECK(has("SHELL=/bin/sh"));
  bool path = false;
  for (const auto& e : env) path |= e.rfind("PATH=", 0) == 0 && e.find("/bin") != std::string::npos;
  CHECK(path);
}
