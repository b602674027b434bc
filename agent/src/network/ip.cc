#include "network/ip.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>

namespace kata::net {
namespace {

Status Invalid(std::string_view what, std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(StrCat(what, " '", text, "': ", why));
}

bool ParseUint(std::string_view s, int* out) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s) {
    if (!isdigit(static_cast<unsigned char>(c))) return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

bool IpAddress::IsZero() const {
  for (size_t i = 0; i < size(); i++) {
    if (bytes[i]) return false;
  }
  return true;
}

bool IpAddress::IsV6LinkLocal() const {
  return family == AF_INET6 && bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
}

StatusOr<IpAddress> ParseIp(std::string_view text, std::string_view what) {
  if (text.empty()) return Invalid(what, text, "empty address");
  if (text.size() > INET6_ADDRSTRLEN) return Invalid(what, text, "not an IP address");
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return Invalid(what, text, "not an IP address");
}

std::string FormatIp(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(a.family, a.bytes.data(), buf, sizeof(buf))) return "?";
  return buf;
}

StatusOr<int> ParseMask(std::string_view mask, int family, std::string_view what) {
  const int max = family == AF_INET ? 32 : 128;
  if (mask.empty()) return Invalid(what, mask, "empty mask");
  int len = 0;
  if (ParseUint(mask, &len)) {
    if (len > max) return Invalid(what, mask, StrCat("prefix length above ", max));
    return len;
  }
  if (family == AF_INET && mask.find('.') != std::string_view::npos) {
    StatusOr<IpAddress> m = ParseIp(mask, what);
    if (m.ok() && m->family == AF_INET) {
      uint32_t v = (uint32_t{m->bytes[0]} << 24) | (uint32_t{m->bytes[1]} << 16) |
                   (uint32_t{m->bytes[2]} << 8) | m->bytes[3];
      // Contiguous: the ones, then only zeros (~v + 1 is a power of two, or v is all ones).
      uint32_t inv = ~v;
      if ((inv & (inv + 1)) != 0) return Invalid(what, mask, "netmask is not contiguous");
      return __builtin_popcount(v);
    }
  }
  return Invalid(what, mask,
                 family == AF_INET ? "not a prefix length or netmask" : "not a prefix length");
}

StatusOr<IpPrefix> ParseCidr(std::string_view text, std::string_view what) {
  size_t slash = text.find('/');
  IpPrefix p;
  if (slash == std::string_view::npos) {
    StatusOr<IpAddress> a = ParseIp(text, what);
    if (!a.ok()) return a.status();
    p.addr = *a;
    p.len = a->max_prefix();
    return p;
  }
  StatusOr<IpAddress> a = ParseIp(text.substr(0, slash), what);
  if (!a.ok()) return Invalid(what, text, "not an IP address/prefix");
  p.addr = *a;
  std::string_view len = text.substr(slash + 1);
  if (!ParseUint(len, &p.len) || p.len > a->max_prefix()) {
    return Invalid(what, text, "bad prefix length");
  }
  return p;
}

std::string FormatCidr(const IpPrefix& p) { return StrCat(FormatIp(p.addr), "/", p.len); }

IpPrefix Masked(const IpPrefix& p) {
  IpPrefix out = p;
  for (size_t i = 0; i < p.addr.size(); i++) {
    int bit = static_cast<int>(i) * 8;
    if (bit >= p.len) {
      out.addr.bytes[i] = 0;
    } else if (bit + 8 > p.len) {
      out.addr.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (p.len - bit)));
    }
  }
  return out;
}

bool HasHostBits(const IpPrefix& p) { return !(Masked(p) == p); }

IpAddress Broadcast(const IpPrefix& p) {
  IpAddress b = Masked(p).addr;
  for (size_t i = 0; i < b.size(); i++) {
    int bit = static_cast<int>(i) * 8;
    if (bit >= p.len) {
      b.bytes[i] = 0xff;
    } else if (bit + 8 > p.len) {
      b.bytes[i] |= static_cast<uint8_t>(0xff >> (p.len - bit));
    }
  }
  return b;
}

StatusOr<Mac> ParseMac(std::string_view text, std::string_view what) {
  // Exactly six groups of two hex digits.
  Mac m{};
  if (text.size() != 17) return Invalid(what, text, "not a MAC address (aa:bb:cc:dd:ee:ff)");
  for (size_t i = 0; i < 6; i++) {
    int hi = HexDigit(text[i * 3]), lo = HexDigit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return Invalid(what, text, "not a MAC address (aa:bb:cc:dd:ee:ff)");
    if (i < 5 && text[i * 3 + 2] != ':' && text[i * 3 + 2] != '-') {
      return Invalid(what, text, "not a MAC address (aa:bb:cc:dd:ee:ff)");
    }
    m[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return m;
}

std::string FormatHw(const uint8_t* bytes, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    if (i) s.push_back(':');
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 15]);
  }
  return s;
}

}  // namespace kata::net
