// Pipes for a container process's stdio. The agent keeps its ends (non-blocking,
// close-on-exec) and serves them through ReadStdout/ReadStderr/WriteStdin; the process
// gets the other ends as fds 0, 1, 2.
#pragma once

#include <cstdint>

#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct StdioPipes {
  UniqueFd stdin_child, stdin_agent;    // the process reads, the agent writes
  UniqueFd stdout_child, stdout_agent;  // the process writes, the agent reads
  UniqueFd stderr_child, stderr_agent;
};

// pipe_size > 0: F_SETPIPE_SZ on each pipe (agent.container_pipe_size).
StatusOr<StdioPipes> MakeStdioPipes(uint32_t pipe_size);

}  // namespace kata
