// The agent's configuration: defaults, then the kernel command line (agent.* options,
// as the Kata runtime passes them), then the environment, then command-line flags.
//
// Parsing is pure: ParseKernelCmdline() never touches the system, it returns the
// options it understood and a list of notes (unknown options, bad values and the
// default used instead) for the caller to log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/log.h"

namespace kata {

struct AgentConfig {
  log::Level log_level = log::Level::kInfo;
  std::string server_addr;  // empty: not given (the PID 1 default is kDefaultServerAddr)
  bool debug_console = false;
  uint32_t debug_console_vport = 0;  // 0: no debug console on vsock
  uint32_t log_vport = 0;            // 0: no log port
  uint32_t hotplug_timeout_s = 3;
  uint32_t container_pipe_size = 0;  // 0: the kernel's default pipe size
  uint32_t sniff_timeout_s = 60;     // how long a new connection may stay silent
  std::string policy_path;           // agent.policy=
  // agent.memory_reserve_mb=: guest memory (MiB) kept out of the containers' reach for the
  // kernel, the agent and its helpers; 0: MemTotal/16 within [64, 256] MiB.
  uint32_t memory_reserve_mb = 0;
  // Container bundles: <bundle_dir>/<id>, where a relative root.path is found.
  std::string bundle_dir = "/run/kata-containers";
};

inline constexpr std::string_view kDefaultServerAddr = "vsock://-1:1024";

struct CmdlineNote {
  log::Level level;
  std::string text;
};

// Splits a kernel command line into words, honouring double quotes as the kernel does.
std::vector<std::string> SplitCmdline(std::string_view cmdline);

// Applies the agent.* options of a kernel command line to cfg.
std::vector<CmdlineNote> ParseKernelCmdline(std::string_view cmdline, AgentConfig* cfg);

// Applies KATA_AGENT_SERVER_ADDR and KATA_AGENT_LOG_LEVEL (getenv-style lookup passed in).
std::vector<CmdlineNote> ApplyEnvironment(const char* (*getenv_fn)(const char*), AgentConfig* cfg);

}  // namespace kata
