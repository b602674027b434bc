// The kernel command-line parser: any /proc/cmdline gives a configuration and notes, never a
// crash; words are split as the kernel does (no word holds an unquoted blank), and parsing
// the same line twice gives the same result.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "init/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> words = kata::SplitCmdline(line);
  size_t chars = 0;
  for (const std::string& w : words) chars += w.size();
  FUZZ_CHECK(chars <= line.size());
  if (line.find('"') == std::string_view::npos) {
    for (const std::string& w : words) {
      FUZZ_CHECK(!w.empty());
      FUZZ_CHECK(w.find_first_of(" \t\n") == std::string::npos);
    }
  }

  kata::AgentConfig a, b;
  std::vector<kata::CmdlineNote> na = kata::ParseKernelCmdline(line, &a);
  std::vector<kata::CmdlineNote> nb = kata::ParseKernelCmdline(line, &b);
  FUZZ_CHECK(na.size() == nb.size());
  FUZZ_CHECK(a.server_addr == b.server_addr && a.log_level == b.log_level &&
             a.hotplug_timeout_s == b.hotplug_timeout_s && a.sniff_timeout_s == b.sniff_timeout_s);
  FUZZ_CHECK(a.hotplug_timeout_s > 0 && a.sniff_timeout_s > 0);
  return 0;
}
