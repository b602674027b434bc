#include "storage/pci_path.h"

#include <cstdio>

namespace kata {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 1 or 2 hex digits.
bool ParseHex(std::string_view s, size_t max_digits, int* out) {
  if (s.empty() || s.size() > max_digits) return false;
  int v = 0;
  for (char c : s) {
    int d = HexDigit(c);
    if (d < 0) return false;
    v = v * 16 + d;
  }
  *out = v;
  return true;
}

bool ParseSlotFn(std::string_view s, PciSlotFn* out) {
  size_t dot = s.find('.');
  int slot = 0, fn = 0;
  if (!ParseHex(s.substr(0, dot), 2, &slot) || slot > 0x1f) return false;
  if (dot != std::string_view::npos && (!ParseHex(s.substr(dot + 1), 1, &fn) || fn > 7))
    return false;
  out->slot = static_cast<uint8_t>(slot);
  out->function = static_cast<uint8_t>(fn);
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) return out;
    s = s.substr(p + 1);
  }
}

// "0000:01:00.0" -> slot 0, function 0.
bool ParseBdf(std::string_view s, PciSlotFn* out) {
  if (s.size() != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') return false;
  int dummy;
  if (!ParseHex(s.substr(0, 4), 4, &dummy) || !ParseHex(s.substr(5, 2), 2, &dummy)) return false;
  return ParseSlotFn(s.substr(8), out);
}

}  // namespace

std::string PciPath::ToString() const {
  std::string out;
  if (root_bus != "00") out = root_bus;
  for (const auto& h : hops) {
    char b[16];
    if (h.function) {
      snprintf(b, sizeof b, "%02x.%x", h.slot, h.function);
    } else {
      snprintf(b, sizeof b, "%02x", h.slot);
    }
    if (!out.empty()) out += '/';
    out += b;
  }
  return out;
}

StatusOr<PciPath> ParsePciPath(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("PCI path '", text, "': ", why, " (expected slots in hex, e.g. 02/00)"));
  };
  if (text.empty()) return bad("empty");
  std::vector<std::string_view> parts = Split(text, '/');
  PciPath p;
  size_t first = 0;
  int bus = 0;
  if (parts.size() >= 3 && parts[0].find('.') == std::string_view::npos &&
      ParseHex(parts[0], 2, &bus) && bus >= 0x20) {
    // A PCIe expander bus (pxb-pcie) is numbered from 0x20 up, above any slot number.
    char b[16];
    snprintf(b, sizeof b, "%02x", bus);
    p.root_bus = b;
    first = 1;
  }
  for (size_t i = first; i < parts.size(); i++) {
    PciSlotFn sf;
    if (!ParseSlotFn(parts[i], &sf))
      return bad(StrCat("element '", parts[i], "' is not SS or SS.F"));
    p.hops.push_back(sf);
  }
  return p;
}

StatusOr<PciPath> PciPathFromSlots(const std::vector<uint32_t>& slots) {
  if (slots.empty()) return absl::InvalidArgumentError("PCI path: no slots");
  PciPath p;
  for (uint32_t s : slots) {
    if (s > 0x1f) return absl::InvalidArgumentError(StrCat("PCI path: slot ", s, " > 0x1f"));
    p.hops.push_back({static_cast<uint8_t>(s), 0});
  }
  return p;
}

bool MatchPciDevpath(std::string_view devpath, const PciPath& path, std::string* rest) {
  const std::string root = StrCat("/pci0000:", path.root_bus, "/");
  size_t at = devpath.find(root);
  if (at == std::string_view::npos) return false;
  std::string_view s = devpath.substr(at + root.size());
  for (const auto& hop : path.hops) {
    size_t slash = s.find('/');
    PciSlotFn got;
    if (!ParseBdf(s.substr(0, slash), &got) || !(got == hop)) return false;
    s = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
  }
  if (rest) *rest = s;
  return true;
}

namespace {

// "virtio<digits>/": the virtio device of a virtio PCI function. Removes it from *rest.
bool ConsumeVirtioDevice(std::string_view* rest) {
  if (rest->substr(0, 6) != "virtio") return false;
  size_t i = 6;
  while (i < rest->size() && (*rest)[i] >= '0' && (*rest)[i] <= '9') i++;
  if (i == 6 || i == rest->size() || (*rest)[i] != '/') return false;
  rest->remove_prefix(i + 1);
  return true;
}

// "<class>/<name>" with a non-empty name and nothing below it.
bool IsClassEntry(std::string_view rest, std::string_view cls) {
  if (rest.size() <= cls.size() + 1 || rest.substr(0, cls.size()) != cls ||
      rest[cls.size()] != '/') {
    return false;
  }
  return rest.find('/', cls.size() + 1) == std::string_view::npos;
}

}  // namespace

bool IsVirtioBlockRest(std::string_view rest) {
  return ConsumeVirtioDevice(&rest) && IsClassEntry(rest, "block");
}

bool IsNetInterfaceRest(std::string_view rest) {
  ConsumeVirtioDevice(&rest);
  return IsClassEntry(rest, "net");
}

}  // namespace kata
