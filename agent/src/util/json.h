// A small strict JSON reader (RFC 8259) for the few documents the agent reads itself (the
// API policy). protobuf's JSON support would cost the static agent about a megabyte.
//
//   ASSIGN_OR_RETURN(Json doc, ParseJson(text));
//   const Json* v = doc.Find("version");      // nullptr when absent
//   if (v && v->is_number()) ...
//
// Errors are INVALID_ARGUMENT naming the byte offset. Nesting deeper than kMaxJsonDepth,
// duplicate object keys, trailing data and invalid UTF-16 escapes are refused.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace kata {

inline constexpr int kMaxJsonDepth = 64;

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  double number() const { return number_; }
  const std::string& string() const { return string_; }
  const std::vector<Json>& array() const { return array_; }
  // Keys in document order.
  const std::vector<std::pair<std::string, Json>>& object() const { return object_; }
  const Json* Find(std::string_view key) const;

  static const char* TypeName(Type t);

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Json> array_;
  std::vector<std::pair<std::string, Json>> object_;
};

StatusOr<Json> ParseJson(std::string_view text);

}  // namespace kata
