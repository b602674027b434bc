// The log port (agent.log_vport=PORT): the agent's JSON log lines streamed to a host client.
//
//   Status st = StartLogPort(1025);   // once, early: lines logged before it are not kept
//
// Every finished log line (log::AddSink) goes into a bounded in-memory backlog. While no
// client is connected the backlog keeps the newest lines (the oldest are dropped and
// counted); a client that connects first receives a notice line
//   {"time":...,"level":"info",...,"msg":"log port: client connected","backlog_lines":N,
//    "dropped_lines":M}
// then the N backlog lines, then new lines as they are logged. One client at a time: a new
// connection takes over from the previous one (which may have died without closing). A
// client that reads too slowly leaves lines in the backlog, where the same bound applies;
// lines dropped meanwhile are announced in-stream with a "log port: lines dropped" notice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kata {

// The bounded line buffer behind the log port. Not thread-safe; pure.
class LogBacklog {
 public:
  LogBacklog(size_t max_lines, size_t max_bytes) : max_lines_(max_lines), max_bytes_(max_bytes) {}

  // Appends a line, dropping the oldest lines to stay within both bounds. A line longer
  // than max_bytes on its own is dropped (and counted) instead.
  void Push(std::string_view line);
  // Removes lines from the front, at least one (if any) and then as long as the total stays
  // within max_bytes.
  std::vector<std::string> Take(size_t max_bytes = SIZE_MAX);
  // Lines dropped since the last call.
  uint64_t TakeDropped();

  size_t lines() const { return lines_.size(); }
  size_t bytes() const { return bytes_; }
  uint64_t dropped_total() const { return dropped_total_; }

 private:
  void DropOldest();

  size_t max_lines_, max_bytes_;
  std::deque<std::string> lines_;
  size_t bytes_ = 0;
  uint64_t dropped_ = 0, dropped_total_ = 0;
};

// Bounds of the log port's backlog.
inline constexpr size_t kLogBacklogLines = 4096;
inline constexpr size_t kLogBacklogBytes = 1 << 20;

// A notice line in the agent's log format (one JSON object, newline included), with the
// given unsigned counters as extra keys.
std::string LogPortNotice(std::string_view level, std::string_view msg,
                          const std::vector<std::pair<std::string, uint64_t>>& counters);

// Listens on vsock://-1:port and installs the log sink. Call once.
Status StartLogPort(uint32_t port);

}  // namespace kata
