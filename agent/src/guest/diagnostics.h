// GetDiagnosticData: the newest agent log lines or the guest kernel's ring buffer, for a
// runtime that cannot reach the log port or the console.
//
//   StartAgentLogTail();                        // once, at start: keeps the newest lines
//   StatusOr<std::string> s = DiagnosticData("agent", "c1");
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace kata {

inline constexpr size_t kDiagnosticMaxBytes = 256 << 10;

// Registers a log sink that keeps the newest agent log lines (bounded).
void StartAgentLogTail();

// log_type "agent": the kept log lines (with container_id: only the lines naming that
// container); "dmesg": the kernel ring buffer. At most kDiagnosticMaxBytes, the newest.
StatusOr<std::string> DiagnosticData(std::string_view log_type, std::string_view container_id);

// The lines of `lines` that hold "<id>" as a JSON string value, in order.
std::string LinesNaming(std::string_view lines, std::string_view id);

}  // namespace kata
