// The agent's one reaper of child processes.
//
// SIGCHLD is blocked in every thread (BlockSignalsEarly() before any thread starts) and
// read from a signalfd by the reaper thread, which calls waitpid(-1) and hands each exit
// status to whoever watches that pid. Nothing else in the agent may call waitpid: a
// second waiter would steal statuses. To watch a child without missing an early exit,
// start it inside Spawn(), which holds the reaper's lock until the watch is registered.
// Statuses nobody watches yet are kept for a while (a container's init is a grandchild
// whose pid the agent learns a moment after it exists), then dropped.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace kata {

// Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP (and ignores SIGPIPE) in the calling thread; call first
// thing in main so every later thread inherits the mask. Children get an empty mask from Spawn.
void BlockSignalsEarly();

class Reaper {
 public:
  using ExitFn = std::function<void(int wait_status)>;

  static Reaper& Get();

  // Starts the reaper thread. as_subreaper: become a child subreaper (when not PID 1),
  // so orphaned descendants are reparented to the agent and reaped here.
  Status Start(bool as_subreaper);

  // Runs start() (which must create the child and return its pid, or an error) under
  // the reaper lock and registers on_exit for that pid before any exit can be dispatched.
  StatusOr<pid_t> Spawn(const std::function<StatusOr<pid_t>()>& start, ExitFn on_exit);

  // Watches an existing descendant (reparented to the agent). If it already exited, the
  // kept status is delivered at once.
  void Watch(pid_t pid, ExitFn on_exit);

  // Number of exits reaped with nobody watching (orphans), for tests and metrics.
  uint64_t orphans_reaped() const;

 private:
  Reaper() = default;
  void Loop();
  struct Impl;
  Impl* impl_ = nullptr;
};

// Starts argv (argv[0] is a path, no PATH lookup) with an empty signal mask and default
// dispositions, stdin from /dev/null, and returns its exit status and combined output
// (truncated to max_output bytes). Uses the reaper.
struct CommandResult {
  int wait_status = 0;
  std::string output;
  bool timed_out = false;  // killed with SIGKILL when timeout_ms passed
};
StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   const std::string& input = {}, size_t max_output = 1 << 20,
                                   int timeout_ms = 60000);

// The general form: path run with argv (argv[0] may differ from path, as execv allows)
// and, when env is given, exactly that environment (otherwise the agent's).
struct CommandSpec {
  std::string path;
  std::vector<std::string> argv;
  std::optional<std::vector<std::string>> env;
  std::string input;
  size_t max_output = 1 << 20;
  int timeout_ms = 60000;
};
StatusOr<CommandResult> RunCommand(const CommandSpec& spec);

// "exited 3", "killed by SIGKILL"
std::string DescribeWaitStatus(int wait_status);
// Exit code as the agent API reports it: the exit status, or 128 + signal.
int ExitCodeOf(int wait_status);

}  // namespace kata
