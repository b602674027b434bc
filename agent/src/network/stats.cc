#include "network/stats.h"

#include <charconv>

#include "util/fs.h"

namespace kata::net {

StatusOr<std::vector<NetStats>> ParseProcNetDev(std::string_view text) {
  std::vector<NetStats> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (++line_no <= 2 || line.find_first_not_of(" \t") == std::string_view::npos)
      continue;  // headers
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("/proc/net/dev line ", line_no, ": no interface name"));
    }
    std::string_view name = line.substr(0, colon);
    name.remove_prefix(std::min(name.find_first_not_of(' '), name.size()));
    uint64_t v[16];
    std::string_view rest = line.substr(colon + 1);
    for (int i = 0; i < 16; i++) {
      rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
      auto r = std::from_chars(rest.data(), rest.data() + rest.size(), v[i]);
      if (r.ec != std::errc() || name.empty()) {
        return absl::InvalidArgumentError(
            StrCat("/proc/net/dev line ", line_no, ": cannot read '", std::string(line), "'"));
      }
      rest.remove_prefix(static_cast<size_t>(r.ptr - rest.data()));
    }
    NetStats s;
    s.name = std::string(name);
    s.rx_bytes = v[0], s.rx_packets = v[1], s.rx_errors = v[2], s.rx_dropped = v[3];
    s.tx_bytes = v[8], s.tx_packets = v[9], s.tx_errors = v[10], s.tx_dropped = v[11];
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<std::vector<NetStats>> ReadNetStats() {
  ASSIGN_OR_RETURN(std::string text, ReadFileString("/proc/self/net/dev", 1 << 20));
  return ParseProcNetDev(text);
}

}  // namespace kata::net
