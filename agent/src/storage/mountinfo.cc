#include "storage/mountinfo.h"

#include <cstdlib>

#include "util/fs.h"

namespace kata {
namespace {

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') i++;
    size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// The kernel escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::vector<std::string_view> f = Fields(text.substr(pos, end - pos));
    pos = end + 1;
    // id parent major:minor root mount_point options [optional...] - fstype source superopts
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); i++) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0) continue;
    MountEntry m;
    std::string_view dev = f[2];
    size_t colon = dev.find(':');
    if (colon == std::string_view::npos) continue;
    m.major =
        static_cast<unsigned>(strtoul(std::string(dev.substr(0, colon)).c_str(), nullptr, 10));
    m.minor =
        static_cast<unsigned>(strtoul(std::string(dev.substr(colon + 1)).c_str(), nullptr, 10));
    m.root = Unescape(f[3]);
    m.mount_point = Unescape(f[4]);
    if (dash + 1 < f.size()) m.fstype = f[dash + 1];
    if (dash + 2 < f.size()) m.source = Unescape(f[dash + 2]);
    out.push_back(std::move(m));
  }
  return out;
}

StatusOr<std::vector<MountEntry>> ReadMountInfo(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileString(path, 16 << 20));
  return ParseMountInfo(text);
}

const MountEntry* FindMount(const std::vector<MountEntry>& all, std::string_view mount_point) {
  const MountEntry* found = nullptr;
  for (const auto& m : all) {
    if (m.mount_point == mount_point) found = &m;
  }
  return found;
}

}  // namespace kata
