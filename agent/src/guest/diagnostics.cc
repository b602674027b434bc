#include "guest/diagnostics.h"

#include <sys/klog.h>

#include <deque>
#include <mutex>

#include "util/log.h"

namespace kata {
namespace {

// glibc names them only in comments: klogctl(2) actions.
constexpr int kSyslogActionReadAll = 3;
constexpr int kSyslogActionSizeBuffer = 10;

// The newest lines, within kDiagnosticMaxBytes.
struct LogTail {
  std::mutex mu;
  std::deque<std::string> lines;
  size_t bytes = 0;
};

LogTail* Tail() {
  static LogTail* t = new LogTail;  // outlives every thread that logs
  return t;
}

std::string Newest(std::string s) {
  if (s.size() <= kDiagnosticMaxBytes) return s;
  size_t cut = s.size() - kDiagnosticMaxBytes;
  size_t nl = s.find('\n', cut);  // whole lines only
  return s.substr(nl == std::string::npos ? cut : nl + 1);
}

StatusOr<std::string> KernelLog() {
  int size = klogctl(kSyslogActionSizeBuffer, nullptr, 0);
  if (size < 0) return ErrnoError(errno, "klogctl(SIZE_BUFFER)");
  std::string buf(static_cast<size_t>(size), '\0');
  int n = klogctl(kSyslogActionReadAll, buf.data(), size);
  if (n < 0) {
    return ErrnoErrorCode(
        errno == EPERM ? absl::StatusCode::kPermissionDenied : absl::StatusCode::kInternal, errno,
        "klogctl(READ_ALL)");
  }
  buf.resize(static_cast<size_t>(n));
  return Newest(std::move(buf));
}

}  // namespace

void StartAgentLogTail() {
  static std::once_flag once;
  std::call_once(once, [] {
    log::AddSink([](std::string_view line) {
      LogTail* t = Tail();
      std::lock_guard<std::mutex> g(t->mu);
      t->lines.emplace_back(line);
      t->bytes += line.size();
      while (t->bytes > kDiagnosticMaxBytes) {
        t->bytes -= t->lines.front().size();
        t->lines.pop_front();
      }
    });
  });
}

std::string LinesNaming(std::string_view lines, std::string_view id) {
  std::string needle = StrCat("\"", id, "\"");
  std::string out;
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl == std::string_view::npos ? lines.size() : nl + 1);
    lines.remove_prefix(line.size());
    if (line.find(needle) != std::string_view::npos) out.append(line);
  }
  return out;
}

StatusOr<std::string> DiagnosticData(std::string_view log_type, std::string_view container_id) {
  if (log_type == "agent") {
    std::string all;
    {
      LogTail* t = Tail();
      std::lock_guard<std::mutex> g(t->mu);
      all.reserve(t->bytes);
      for (const std::string& l : t->lines) all.append(l);
    }
    if (!container_id.empty()) all = LinesNaming(all, container_id);
    return Newest(std::move(all));
  }
  if (log_type == "dmesg") {
    if (!container_id.empty()) {
      return absl::InvalidArgumentError("log_type dmesg is the whole guest's: no container_id");
    }
    return KernelLog();
  }
  return absl::InvalidArgumentError(
      StrCat("log_type '", log_type, "' is unknown: 'agent' or 'dmesg'"));
}

}  // namespace kata
