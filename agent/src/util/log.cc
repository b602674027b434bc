#include "util/log.h"

#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <vector>

namespace kata::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_fd{2};

struct Extra {
  std::mutex mu;
  std::vector<Sink> sinks;
  std::string source = "kata-agent";
};

Extra& extra() {
  static Extra* e = new Extra();  // never destroyed: threads may log during exit
  return *e;
}

void WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

bool ParseLevel(std::string_view s, Level* out) {
  struct {
    const char* name;
    Level level;
  } static const kNames[] = {
      {"trace", Level::kDebug}, {"debug", Level::kDebug},   {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"warning", Level::kWarn},  {"error", Level::kError},
      {"critical", Level::kCritical}, {"fatal", Level::kCritical}, {"panic", Level::kCritical},
  };
  for (const auto& n : kNames) {
    if (s.size() == strlen(n.name) && strncasecmp(s.data(), n.name, s.size()) == 0) {
      *out = n.level;
      return true;
    }
  }
  return false;
}

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kCritical: return "critical";
  }
  return "info";
}

void SetLevel(Level l) { g_level.store(static_cast<int>(l)); }
Level GetLevel() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void SetFd(int fd) { g_fd.store(fd); }

void AddSink(Sink sink) {
  std::lock_guard<std::mutex> lk(extra().mu);
  extra().sinks.push_back(std::move(sink));
}

void SetSource(std::string_view source) {
  std::lock_guard<std::mutex> lk(extra().mu);
  extra().source = std::string(source);
}

void JsonEscape(std::string_view s, std::string* out) {
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          char tmp[8];
          snprintf(tmp, sizeof tmp, "\\u%04x", c);
          out->append(tmp);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
}

Line::Line(Level level, std::string_view msg) : on_(Enabled(level)) {
  if (!on_) return;
  buf_.reserve(192);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[64];
  snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
  buf_.append("{\"time\":\"").append(tbuf).append("\",\"level\":\"").append(LevelName(level));
  {
    std::lock_guard<std::mutex> lk(extra().mu);
    buf_.append("\",\"source\":\"").append(extra().source);
  }
  buf_.append("\",\"pid\":").append(std::to_string(getpid())).append(",\"msg\":\"");
  JsonEscape(msg, &buf_);
  buf_.push_back('"');
}

Line& Line::Kv(std::string_view key, std::string_view value) {
  if (!on_) return *this;
  buf_.append(",\"");
  JsonEscape(key, &buf_);
  buf_.append("\":\"");
  JsonEscape(value, &buf_);
  buf_.push_back('"');
  return *this;
}

Line& Line::Kv(std::string_view key, int64_t value) {
  if (!on_) return *this;
  buf_.append(",\"");
  JsonEscape(key, &buf_);
  buf_.append("\":").append(std::to_string(value));
  return *this;
}

Line& Line::Kv(std::string_view key, uint64_t value) {
  if (!on_) return *this;
  buf_.append(",\"");
  JsonEscape(key, &buf_);
  buf_.append("\":").append(std::to_string(value));
  return *this;
}

Line& Line::Kv(std::string_view key, double value) {
  if (!on_) return *this;
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%.3f", value);
  buf_.append(",\"");
  JsonEscape(key, &buf_);
  buf_.append("\":").append(tmp);
  return *this;
}

Line& Line::Kv(std::string_view key, bool value) {
  if (!on_) return *this;
  buf_.append(",\"");
  JsonEscape(key, &buf_);
  buf_.append("\":").append(value ? "true" : "false");
  return *this;
}

Line::~Line() {
  if (!on_) return;
  buf_.append("}\n");
  WriteAll(g_fd.load(), buf_.data(), buf_.size());
  std::vector<Sink> sinks;
  {
    std::lock_guard<std::mutex> lk(extra().mu);
    if (extra().sinks.empty()) return;
    sinks = extra().sinks;
  }
  for (auto& s : sinks) s(buf_);
}

}  // namespace kata::log
