// Structured logging: one JSON object per line.
//
//   log::Info("listening").Kv("addr", addr).Kv("start_ms", ms);
//   -> {"time":"2026-11-23T14:00:00.123456Z","level":"info","pid":1,"msg":"listening",
//       "addr":"vsock://-1:1024","start_ms":3.2}
//
// The line is written with a single write(2) when the temporary dies. Lines below
// the current level cost one comparison. Sinks (the console, the log vport) are
// called with the finished line, newline included.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace kata::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError, kCritical };

// Parses debug|info|warn|warning|error|critical|fatal|panic (case-insensitive).
bool ParseLevel(std::string_view s, Level* out);
const char* LevelName(Level l);

void SetLevel(Level l);
Level GetLevel();
inline bool Enabled(Level l) { return l >= GetLevel(); }

// Where lines go. Default: fd 2. The fd sink is replaced, extra sinks are added.
void SetFd(int fd);
using Sink = std::function<void(std::string_view line)>;
void AddSink(Sink sink);
// The process name put in every line ("kata-agent", "container-init", ...).
void SetSource(std::string_view source);

class Line {
 public:
  Line(Level level, std::string_view msg);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& Kv(std::string_view key, std::string_view value);
  Line& Kv(std::string_view key, absl::string_view value) {
    return Kv(key, std::string_view(value.data(), value.size()));
  }
  Line& Kv(std::string_view key, const char* value) { return Kv(key, std::string_view(value)); }
  Line& Kv(std::string_view key, const std::string& value) {
    return Kv(key, std::string_view(value));
  }
  Line& Kv(std::string_view key, int64_t value);
  Line& Kv(std::string_view key, int value) { return Kv(key, static_cast<int64_t>(value)); }
  Line& Kv(std::string_view key, unsigned value) { return Kv(key, static_cast<int64_t>(value)); }
  Line& Kv(std::string_view key, uint64_t value);
  Line& Kv(std::string_view key, long long value) { return Kv(key, static_cast<int64_t>(value)); }
  Line& Kv(std::string_view key, unsigned long long value) {
    return Kv(key, static_cast<uint64_t>(value));
  }
  Line& Kv(std::string_view key, double value);
  Line& Kv(std::string_view key, bool value);

 private:
  bool on_;
  std::string buf_;
};

inline Line Debug(std::string_view msg) { return Line(Level::kDebug, msg); }
inline Line Info(std::string_view msg) { return Line(Level::kInfo, msg); }
inline Line Warn(std::string_view msg) { return Line(Level::kWarn, msg); }
inline Line Error(std::string_view msg) { return Line(Level::kError, msg); }
inline Line Critical(std::string_view msg) { return Line(Level::kCritical, msg); }

// Appends s to out as the body of a JSON string (no quotes), escaping as needed.
void JsonEscape(std::string_view s, std::string* out);

}  // namespace kata::log
