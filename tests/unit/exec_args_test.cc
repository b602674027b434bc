// CheckExecArgs: what execve(2) would refuse with E2BIG is refused when the spec is checked.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "runtime/exec.h"

using kata::CheckExecArgs;

TEST_CASE("exec args: within what execve takes", "[exec]") {
  CHECK(CheckExecArgs({"/bin/sh", "-c", "true"}, {"PATH=/bin"}).ok());
  CHECK(CheckExecArgs({std::string(131071, 'a')}, {}).ok());  // 32 pages with its NUL
  // 1.9 MiB in 60 KiB strings: under a quarter of the default 8 MiB stack.
  std::vector<std::string> env(32, std::string(60 * 1024, 'x'));
  CHECK(CheckExecArgs({"/bin/true"}, env).ok());
}

TEST_CASE("exec args: one string too long", "[exec]") {
  kata::Status st = CheckExecArgs({"/bin/true", std::string(131072, 'a')}, {});
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("process.args[1]") != std::string::npos);
  st = CheckExecArgs({"/bin/true"}, {"PATH=/bin", "BIG=" + std::string(200000, 'v')});
  CHECK(std::string(st.message()).find("process.env[1]") != std::string::npos);
}

TEST_CASE("exec args: the total follows the stack limit", "[exec]") {
  std::vector<std::string> env(52, std::string(60 * 1024, 'x'));  // 3.05 MiB
  kata::Status st = CheckExecArgs({"/bin/true"}, env);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("stack limit") != std::string::npos);
  CHECK(CheckExecArgs({"/bin/true"}, env, 16u << 20).ok());  // a quarter: 4 MiB
  // Never above 6 MiB, however large the stack limit (unlimited included).
  std::vector<std::string> big(120, std::string(60 * 1024, 'x'));  // 7 MiB
  CHECK(!CheckExecArgs({"/bin/true"}, big, RLIM_INFINITY).ok());
  CHECK(CheckExecArgs({"/bin/true"}, env, RLIM_INFINITY).ok());
  // The pointers count too: many empty strings.
  std::vector<std::string> many(300000, "");
  CHECK(!CheckExecArgs({"/bin/true"}, many).ok());
}

TEST_CASE("exec args: a small stack limit still allows 128 KiB", "[exec]") {
  std::vector<std::string> env(2, std::string(60 * 1024, 'x'));
  CHECK(CheckExecArgs({"/bin/true"}, env, 64 * 1024).ok());
  env.push_back(std::string(60 * 1024, 'y'));
  CHECK(!CheckExecArgs({"/bin/true"}, env, 64 * 1024).ok());
}
