#include "runtime/stdio.h"

#include <fcntl.h>
#include <unistd.h>

#include "runtime/errors.h"

namespace kata {
namespace {

Status MakePipe(uint32_t size, UniqueFd* r, UniqueFd* w, bool agent_reads) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return SysError(errno, "pipe2");
  r->reset(p[0]);
  w->reset(p[1]);
  if (size > 0 && fcntl(p[0], F_SETPIPE_SZ, static_cast<int>(size)) < 0) {
    return SysError(errno, "F_SETPIPE_SZ ", size);
  }
  // Non-blocking only on the agent's end (its own open file description).
  int agent_fd = agent_reads ? p[0] : p[1];
  if (fcntl(agent_fd, F_SETFL, fcntl(agent_fd, F_GETFL) | O_NONBLOCK) < 0)
    return SysError(errno, "O_NONBLOCK");
  return absl::OkStatus();
}

}  // namespace

StatusOr<StdioPipes> MakeStdioPipes(uint32_t pipe_size) {
  StdioPipes s;
  RETURN_IF_ERROR(MakePipe(pipe_size, &s.stdin_child, &s.stdin_agent, false));
  RETURN_IF_ERROR(MakePipe(pipe_size, &s.stdout_agent, &s.stdout_child, true));
  RETURN_IF_ERROR(MakePipe(pipe_size, &s.stderr_agent, &s.stderr_child, true));
  return s;
}

}  // namespace kata
