// The agent's side of container set-up: start the set-up process from the sealed self
// image, configure it, answer its requests, and learn the container's init.
//
//   InitLaunch l{...};
//   ASSIGN_OR_RETURN(InitHandle h, LaunchContainerInit(ctx, l));  // set-up done; the
//   ...                                                           // init waits for Start
//   RETURN_IF_ERROR(StartContainerInit(ctx, h));                  // exec'd, or why not
//
// Process tree: the agent spawns the set-up process P1 (posix_spawn, vfork-style, safe in
// the multi-threaded agent; empty signal mask, default dispositions, new session) inside
// Reaper::Spawn. P1 joins and creates namespaces and forks the container's init P2 (the
// fork puts it in the new pid namespace, as pid 1), sends its pid with a pidfd, and exits.
// P2 is reparented to the agent (PID 1, or the child subreaper on the host), watched
// with Reaper::Watch, and signalled only through its pidfd (never a recycled pid).
//
// Every failure on the way names the step and the errno ("mounts: mount proc on /proc:
// EPERM (...)"); on failure everything started is killed and reaped before returning.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

#include "oci.pb.h"
#include "rpc/call_context.h"
#include "runtime/spec.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

struct InitLaunch {
  std::string container_id;
  const grpc::Spec* spec = nullptr;       // rewritten for the set-up process
  const ContainerSpec* parsed = nullptr;  // the same, parsed (id maps; process.names is sent
                                          // along: StringUser is not part of the spec)
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;  // the process's ends
  int log_level = 0;
  // Called with P1's pid before it is configured (it waits for its config): the place to
  // put it into the container's cgroup, so that everything it forks starts there.
  std::function<Status(pid_t)> before_config;
  // Called once the container's init is ready (set up, waiting for Start): the place to
  // apply the cgroup's resources and device rules, as runc does at procReady (the device
  // nodes are made by then). A failure kills both processes.
  std::function<Status()> on_ready;
  // The container's init exited (called on the reaper thread, no lock held). Registered
  // before LaunchContainerInit returns; on a failed launch it is still called once the
  // init is reaped.
  std::function<void(int wait_status)> on_init_exit;
};

struct InitHandle {
  pid_t pid = 0;  // the container's init, in the agent's pid namespace
  UniqueFd pidfd;
  UniqueFd sync;     // the agent's end of the socketpair, until Start
  UniqueFd console;  // process.terminal: the pty's master
};

StatusOr<InitHandle> LaunchContainerInit(CallContext& ctx, const InitLaunch& l);

// ExecProcess: one more process in a running container. The set-up process gets a pidfd
// of the container's init and joins its namespaces through it (setns(pidfd, flags): all
// at once, from a single-threaded process), then forks the process into the container's
// pid namespace, which applies its own process spec and execs.
struct ExecLaunch {
  std::string container_id, exec_id;
  int init_pidfd = -1;
  int namespaces = 0;  // CLONE_NEW* of the container's namespaces to join
  const grpc::Process* process = nullptr;
  std::optional<UserNames> names;               // StringUser
  const grpc::LinuxSeccomp* seccomp = nullptr;  // the container's filter, if any
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  int log_level = 0;
  // As InitLaunch's: the container's cgroup for the set-up process.
  std::function<Status(pid_t)> before_config;
  // The process exited (reaper thread). Called even when the launch fails after its fork.
  std::function<void(int wait_status)> on_exit;
};

struct ExecHandle {
  pid_t pid = 0;
  UniqueFd pidfd;
  UniqueFd console;  // process.terminal: the pty's master
};

// Returns once the process has exec'd (or why it could not).
StatusOr<ExecHandle> LaunchExecProcess(CallContext& ctx, const ExecLaunch& l);

// Sends Start and waits until the init has exec'd the process (the socket, close-on-exec
// in the init, reaches end of stream) or reports why it could not. Closes h.sync.
Status StartContainerInit(CallContext& ctx, InitHandle& h);

}  // namespace kata
