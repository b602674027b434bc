#include "sandbox/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/console.h"
#include "runtime/errors.h"
#include "runtime/signals.h"

namespace kata {
namespace {

// A read when the pipe reports nothing yet (or cannot say): enough for a line or two.
constexpr int kSmallRead = 4096;

// ctx.WaitFd, but for at most `most`. *timed_out tells a wait that ran out its own time
// (the call itself still alive) from one that ended with the call.
Status WaitFdFor(CallContext& ctx, int fd, short events, std::chrono::milliseconds most,
                 bool* timed_out) {
  *timed_out = false;
  const CallContext::Clock::time_point orig = ctx.deadline();
  const CallContext::Clock::time_point limit = CallContext::Clock::now() + most;
  const bool limited = limit < orig;
  if (limited) ctx.set_deadline(limit);
  Status st = ctx.WaitFd(fd, events);
  if (limited) ctx.set_deadline(orig);
  if (limited && st.code() == absl::StatusCode::kDeadlineExceeded && ctx.Alive().ok()) {
    *timed_out = true;
    return absl::OkStatus();
  }
  return st;
}

}  // namespace

std::shared_ptr<UniqueFd> Stream::Fd() const {
  std::lock_guard<std::mutex> lk(mu_);
  return fd_;
}

bool Stream::closed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !fd_;
}

bool Stream::drained() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !fd_ || (eof_ && pending_.empty());
}

bool Stream::at_line_start() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_written_ == '\n';
}

void Stream::Close() {
  std::shared_ptr<UniqueFd> fd;
  {
    std::lock_guard<std::mutex> lk(mu_);
    fd = std::move(fd_);
    fd_.reset();
  }
  // The fd closes here, or when the last call using it returns.
}

StatusOr<std::string> Stream::Read(CallContext& ctx, size_t max, const std::atomic<bool>& exited) {
  for (;;) {
    std::shared_ptr<UniqueFd> fd;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!pending_.empty()) {
        std::string out = pending_.substr(0, max);
        pending_.erase(0, out.size());
        return out;
      }
      if (eof_ || !fd_) return std::string();
      fd = fd_;
    }
    // Sized to what the pipe holds, not to what the client asked for: a 1 MiB request
    // against a 64 KiB pipe would zero (and, above malloc's mmap threshold, map and fault
    // in) a megabyte per call. With nothing there yet, a small buffer for the next read.
    int avail = 0;
    if (ioctl(fd->get(), FIONREAD, &avail) < 0 || avail <= 0) avail = kSmallRead;
    const size_t want = std::min(max, static_cast<size_t>(avail));
    std::string buf(want, '\0');
    ssize_t n = read(fd->get(), buf.data(), want);
    if (n > 0) {
      buf.resize(static_cast<size_t>(n));
      if (Status alive = ctx.Alive(); !alive.ok()) {
        // The call ended while its bytes were on the way: keep them for the next one.
        std::lock_guard<std::mutex> lk(mu_);
        pending_.append(buf);
        return alive;
      }
      return buf;
    }
    // A pty's master reads EIO once no process has the terminal open any more.
    if (n == 0 || (n < 0 && errno == EIO)) {
      std::lock_guard<std::mutex> lk(mu_);
      eof_ = true;
      return std::string();
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return SysError(errno, "read ", name_);
    // Nothing there yet. While the process lives, wake up now and then to notice its
    // exit; after it, give the pipe kDrainAfterExit to deliver or end.
    const bool was_exited = exited.load();
    bool timed_out = false;
    RETURN_IF_ERROR(WaitFdFor(ctx, fd->get(), POLLIN,
                              was_exited ? kDrainAfterExit : std::chrono::milliseconds(1000),
                              &timed_out));
    if (timed_out && was_exited) {
      std::lock_guard<std::mutex> lk(mu_);
      eof_ = true;
      return std::string();
    }
  }
}

StatusOr<size_t> Stream::Write(CallContext& ctx, std::string_view data) {
  std::shared_ptr<UniqueFd> fd = Fd();
  if (!fd) return absl::FailedPreconditionError(StrCat(name_, " is closed"));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd->get(), data.data() + off, data.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      std::lock_guard<std::mutex> lk(mu_);
      last_written_ = data[off - 1];
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      RETURN_IF_ERROR(ctx.WaitFd(fd->get(), POLLOUT));
      continue;
    }
    if (n < 0 && errno == EPIPE) {
      return absl::FailedPreconditionError(StrCat(name_, ": the process closed its end"));
    }
    return SysError(errno, "write ", name_);
  }
  return off;
}

void Process::SetStdio(UniqueFd in, UniqueFd out, UniqueFd err) {
  std::string who = init_ ? "the init's " : StrCat("exec ", exec_id_, "'s ");
  stdin_ = std::make_unique<Stream>(std::move(in), who + "stdin");
  stdout_ = std::make_unique<Stream>(std::move(out), who + "stdout");
  stderr_ = std::make_unique<Stream>(std::move(err), who + "stderr");
}

Status Process::SetTerminal(UniqueFd master) {
  if (fcntl(master.get(), F_SETFL, O_NONBLOCK) < 0) return SysError(errno, "O_NONBLOCK on the pty");
  int in = fcntl(master.get(), F_DUPFD_CLOEXEC, 3);
  if (in < 0) return SysError(errno, "dup the pty");
  int out = fcntl(master.get(), F_DUPFD_CLOEXEC, 3);
  if (out < 0) {
    close(in);
    return SysError(errno, "dup the pty");
  }
  std::string who = init_ ? "the init's " : StrCat("exec ", exec_id_, "'s ");
  stdin_ = std::make_unique<Stream>(UniqueFd(in), who + "terminal");
  stdout_ = std::make_unique<Stream>(UniqueFd(out), who + "terminal");
  stderr_ = std::make_unique<Stream>(UniqueFd(), who + "stderr");
  console_ = std::move(master);
  return absl::OkStatus();
}

Status Process::ResizeTerminal(uint32_t rows, uint32_t cols) {
  if (!console_) {
    return absl::FailedPreconditionError(StrCat("process ", exec_id_, " has no terminal"));
  }
  if (rows > 0xffff || cols > 0xffff) {
    return absl::InvalidArgumentError(StrCat("window size ", rows, "x", cols, ": at most 65535"));
  }
  return SetWindowSize(console_.get(), rows, cols);
}

Status Process::CloseStdin(CallContext& ctx) {
  if (!stdin_) return absl::OkStatus();
  if (!console_) {
    stdin_->Close();
    return absl::OkStatus();
  }
  if (stdin_->closed()) return absl::OkStatus();
  struct termios t;
  if (tcgetattr(console_.get(), &t) < 0) return SysError(errno, "tcgetattr on the pty");
  RETURN_IF_ERROR(stdin_->Write(ctx, EofBytes(t, stdin_->at_line_start())).status());
  return absl::OkStatus();
}

bool Process::OutputsDrained() const {
  return (!stdout_ || stdout_->drained()) && (!stderr_ || stderr_->drained());
}

void Process::CloseStdio() {
  for (Stream* s : {stdin_.get(), stdout_.get(), stderr_.get()}) {
    if (s) s->Close();
  }
}

Status Process::Signal(int sig) const {
  if (exited() || !pidfd_) return absl::OkStatus();
  return SendSignal(pidfd_.get(), sig, StrCat("pid ", pid_));
}

}  // namespace kata
