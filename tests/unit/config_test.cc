#include <catch2/catch.hpp>
#include <map>

#include "init/config.h"

using kata::AgentConfig;
using kata::ParseKernelCmdline;

TEST_CASE("kernel command line words honour quotes") {
  auto w = kata::SplitCmdline("console=ttyS0 agent.log=debug  a=\"b c\"\n");
  REQUIRE(w.size() == 3);
  CHECK(w[2] == "a=b c");
}

TEST_CASE("agent options are parsed from the kernel command line") {
  AgentConfig cfg;
  auto notes = ParseKernelCmdline(
      "console=ttyS0 quiet agent.log=debug agent.server_addr=unix:///run/a.sock agent.debug_console "
      "agent.debug_console_vport=1026 agent.log_vport=1025 agent.hotplug_timeout=7 "
      "agent.container_pipe_size=131072",
      &cfg);
  CHECK(notes.empty());
  CHECK(cfg.log_level == kata::log::Level::kDebug);
  CHECK(cfg.server_addr == "unix:///run/a.sock");
  CHECK(cfg.debug_console);
  CHECK(cfg.debug_console_vport == 1026);
  CHECK(cfg.log_vport == 1025);
  CHECK(cfg.hotplug_timeout_s == 7);
  CHECK(cfg.container_pipe_size == 131072);
}

TEST_CASE("bad values keep the default and are reported") {
  AgentConfig cfg;
  auto notes = ParseKernelCmdline("agent.log=loud agent.hotplug_timeout=abc agent.debug_console=maybe", &cfg);
  CHECK(cfg.log_level == kata::log::Level::kInfo);
  CHECK(cfg.hotplug_timeout_s == 3);
  CHECK(!cfg.debug_console);
  REQUIRE(notes.size() == 3);
  CHECK(notes[0].text.find("agent.log") != std::string::npos);
  CHECK(notes[0].text.find("loud") != std::string::npos);
}

TEST_CASE("unknown agent options are noted, other options ignored") {
  AgentConfig cfg;
  auto notes = ParseKernelCmdline("root=/dev/vda agent.frobnicate=1 agent.trace=true", &cfg);
  REQUIRE(notes.size() == 2);
  CHECK(notes[0].level == kata::log::Level::kInfo);
  CHECK(notes[0].text.find("agent.frobnicate") != std::string::npos);
}

TEST_CASE("environment overrides") {
  static std::map<std::string, std::string> env;
  env = {{"KATA_AGENT_SERVER_ADDR", "unix://@x"}, {"KATA_AGENT_LOG_LEVEL", "warn"}};
  AgentConfig cfg;
  auto notes = kata::ApplyEnvironment(
      [](const char* k) -> const char* {
        auto it = env.find(k);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      &cfg);
  CHECK(notes.empty());
  CHECK(cfg.server_addr == "unix://@x");
  CHECK(cfg.log_level == kata::log::Level::kWarn);
}
