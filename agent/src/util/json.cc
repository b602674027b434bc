#include "util/json.h"

#include <cstdlib>
#include <set>

namespace kata {

const Json* Json::Find(std::string_view key) const {
  for (const auto& [k, v] : object_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const char* Json::TypeName(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "a boolean";
    case Type::kNumber:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kArray:
      return "an array";
    case Type::kObject:
      return "an object";
  }
  return "?";
}

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  StatusOr<Json> Document() {
    Json v;
    RETURN_IF_ERROR(Value(&v, 0));
    SkipSpace();
    if (i_ != s_.size()) return Error("data after the JSON value");
    return v;
  }

 private:
  Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(StrCat("JSON: ", what, " at byte ", i_));
  }

  void SkipSpace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      i_++;
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Status Value(Json* out, int depth) {
    if (depth > kMaxJsonDepth) return Error("nesting too deep");
    SkipSpace();
    if (i_ >= s_.size()) return Error("unexpected end");
    char c = s_[i_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    if (c == '"') {
      out->type_ = Json::Type::kString;
      return String(&out->string_);
    }
    if (Literal("true") || Literal("false")) {
      out->type_ = Json::Type::kBool;
      out->bool_ = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';
      return absl::OkStatus();
    }
    if (Literal("null")) return absl::OkStatus();
    if (c == '-' || (c >= '0' && c <= '9')) return Number(out);
    return Error("unexpected character");
  }

  Status Number(Json* out) {
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const size_t start = i_;
    auto digits = [&] {
      size_t n = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') i_++, n++;
      return n;
    };
    if (s_[i_] == '-') i_++;
    if (i_ < s_.size() && s_[i_] == '0') {
      i_++;
    } else if (digits() == 0) {
      return Error("invalid number");
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      i_++;
      if (digits() == 0) return Error("invalid number");
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (digits() == 0) return Error("invalid number");
    }
    std::string text(s_.substr(start, i_ - start));
    out->type_ = Json::Type::kNumber;
    out->number_ = strtod(text.c_str(), nullptr);
    return absl::OkStatus();
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  bool Hex4(uint32_t* v) {
    if (i_ + 4 > s_.size()) return false;
    *v = 0;
    for (int k = 0; k < 4; k++) {
      char h = s_[i_++];
      *v <<= 4;
      if (h >= '0' && h <= '9') {
        *v |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        *v |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        *v |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  Status String(std::string* out) {
    i_++;  // the opening quote
    for (;;) {
      if (i_ >= s_.size()) return Error("unterminated string");
      char c = s_[i_++];
      if (c == '"') return absl::OkStatus();
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return Error("unterminated string");
      char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return Error("invalid \\u escape");
          if (cp >= 0xdc00 && cp <= 0xdfff) return Error("lone low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (!Literal("\\u") || !Hex4(&lo) || lo < 0xdc00 || lo > 0xdfff) {
              return Error("high surrogate without its low half");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Error("invalid escape");
      }
    }
  }

  Status Array(Json* out, int depth) {
    out->type_ = Json::Type::kArray;
    i_++;
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == ']') {
      i_++;
      return absl::OkStatus();
    }
    for (;;) {
      Json v;
      RETURN_IF_ERROR(Value(&v, depth + 1));
      out->array_.push_back(std::move(v));
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == ',') {
        i_++;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        i_++;
        return absl::OkStatus();
      }
      return Error("expected ',' or ']'");
    }
  }

  Status Object(Json* out, int depth) {
    out->type_ = Json::Type::kObject;
    i_++;
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == '}') {
      i_++;
      return absl::OkStatus();
    }
    std::set<std::string> seen;
    for (;;) {
      SkipSpace();
      if (i_ >= s_.size() || s_[i_] != '"') return Error("expected a key");
      std::string key;
      RETURN_IF_ERROR(String(&key));
      if (!seen.insert(key).second) return Error(StrCat("duplicate key \"", key, "\""));
      SkipSpace();
      if (i_ >= s_.size() || s_[i_] != ':') return Error("expected ':'");
      i_++;
      Json v;
      RETURN_IF_ERROR(Value(&v, depth + 1));
      out->object_.emplace_back(std::move(key), std::move(v));
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == ',') {
        i_++;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        i_++;
        return absl::OkStatus();
      }
      return Error("expected ',' or '}'");
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

StatusOr<Json> ParseJson(std::string_view text) { return JsonParser(text).Document(); }

}  // namespace kata
