// StrCat for the types the agent uses, std::string_view included (Debian's abseil has its
// own absl::string_view, which StrCat takes but std::string_view does not convert to).
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace kata {
namespace strcat_internal {

inline void Append(std::string* out, std::string_view s) { out->append(s.data(), s.size()); }
inline void Append(std::string* out, absl::string_view s) { out->append(s.data(), s.size()); }
inline void Append(std::string* out, const std::string& s) { out->append(s); }
inline void Append(std::string* out, const char* s) { out->append(s ? s : "(null)"); }
inline void Append(std::string* out, char c) { out->push_back(c); }
template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char> &&
                                                  !std::is_same_v<T, bool>>>
void Append(std::string* out, T v) {
  out->append(std::to_string(v));
}
inline void Append(std::string* out, bool b) { out->append(b ? "true" : "false"); }

}  // namespace strcat_internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (strcat_internal::Append(&out, args), ...);
  return out;
}

}  // namespace kata
