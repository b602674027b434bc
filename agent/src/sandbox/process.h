// A process of a container (its init, or an exec) as the agent sees it: the pidfd it is
// signalled through, its exit status, and the agent's ends of its stdio.
//
// Streams are read and written straight from the pipes, through the call's context:
//   StatusOr<std::string> data = p->stdout_stream()->Read(ctx, 65536, p->exited_flag());
// No output is buffered in the agent beyond one read for a call that was cancelled after
// its bytes left the pipe (they are handed to the next call). Output written just before
// the process exited stays in the pipe until read. Empty data means end of stream.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "rpc/call_context.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace kata {

class Stream {
 public:
  // An invalid fd makes a stream that is at its end from the start (a terminal's stderr).
  Stream(UniqueFd fd, std::string name)
      : fd_(std::make_shared<UniqueFd>(std::move(fd))),
        eof_(!fd_->valid()),
        name_(std::move(name)) {}

  // Up to max bytes; empty at end of stream. Once the process has exited (*exited), a
  // stream with no data and no end (a writer outlived the process, e.g. a daemon in a
  // shared pid namespace) ends after kDrainAfterExit of silence, as upstream does.
  StatusOr<std::string> Read(CallContext& ctx, size_t max, const std::atomic<bool>& exited);
  // Writes all of data (waiting for room in the pipe). Returns the bytes written.
  StatusOr<size_t> Write(CallContext& ctx, std::string_view data);
  // Closes the agent's end (a call using it keeps it open until it returns).
  void Close();
  bool closed() const;
  // Read to its end (or closed): nothing more will come.
  bool drained() const;
  // Nothing written yet, or the last byte written was a newline (for a terminal's EOF).
  bool at_line_start() const;

  static constexpr std::chrono::milliseconds kDrainAfterExit{500};

 private:
  std::shared_ptr<UniqueFd> Fd() const;

  mutable std::mutex mu_;
  std::shared_ptr<UniqueFd> fd_;  // shared with the calls using it, so Close() never
                                  // frees an fd number a blocked call still polls
  std::string pending_;           // read for a call that was cancelled
  bool eof_ = false;
  char last_written_ = '\n';
  std::string name_;
};

class Process {
 public:
  Process(std::string exec_id, bool init) : exec_id_(std::move(exec_id)), init_(init) {}

  const std::string& exec_id() const { return exec_id_; }
  bool init() const { return init_; }
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  void SetPid(pid_t pid, UniqueFd pidfd) {
    pid_ = pid;
    pidfd_ = std::move(pidfd);
  }

  void SetStdio(UniqueFd in, UniqueFd out, UniqueFd err);
  // process.terminal: stdin and stdout are the pty's master, stderr is empty (the
  // terminal carries both outputs).
  Status SetTerminal(UniqueFd master);
  bool terminal() const { return console_.valid(); }
  // TtyWinResize: FAILED_PRECONDITION without a terminal.
  Status ResizeTerminal(uint32_t rows, uint32_t cols);
  // CloseStdin: a pipe is closed; a terminal gets its end-of-file character(s), since
  // closing the master would hang the process up.
  Status CloseStdin(CallContext& ctx);
  Stream* stdin_stream() { return stdin_.get(); }
  Stream* stdout_stream() { return stdout_.get(); }
  Stream* stderr_stream() { return stderr_.get(); }
  void CloseStdio();

  // Set once, by the reaper's callback (under the container's lock, for waiters).
  const std::atomic<bool>& exited_flag() const { return exited_; }
  bool exited() const { return exited_.load(); }
  int wait_status() const { return wait_status_; }
  void SetExited(int wait_status) {
    wait_status_ = wait_status;
    exited_.store(true);
  }

  // Sends sig (through the pidfd: never to a recycled pid). A process that is gone is
  // not an error.
  Status Signal(int sig) const;

  // An exec is released (forgotten by its container, its streams closed) once it was
  // waited for and its outputs were read to their end. Guarded by the container's lock.
  bool waited = false;
  bool OutputsDrained() const;

 private:
  const std::string exec_id_;
  const bool init_;
  pid_t pid_ = 0;
  UniqueFd pidfd_;
  std::unique_ptr<Stream> stdin_, stdout_, stderr_;
  UniqueFd console_;  // the pty's master (terminal only), for window sizes
  std::atomic<bool> exited_{false};
  int wait_status_ = 0;
};

}  // namespace kata
