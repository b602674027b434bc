// Escape sequences of `agent-ctl console`, as ssh has them: the escape character (~ by
// default) means something only as the first character of a line, i.e. at the start or
// right after Enter:
//   ~.   leave the console
//   ~^Z  suspend agent-ctl (the terminal is restored meanwhile)
//   ~?   list the escapes
//   ~~   send one ~
// Any other character after ~ sends both. Pure: bytes in, bytes to send and events out.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kata::ctl {

class EscapeParser {
 public:
  enum class Event { kNone, kDisconnect, kSuspend, kHelp };

  // escape_char < 0: no escapes, every byte is sent.
  explicit EscapeParser(int escape_char = '~') : esc_(escape_char) {}

  // Appends to *out what the typed bytes in `in` send. Stops after the first event and
  // returns it; *consumed says how many bytes of `in` were used (all when kNone).
  Event Feed(std::string_view in, std::string* out, size_t* consumed) {
    for (size_t i = 0; i < in.size(); i++) {
      const char c = in[i];
      Event ev = Step(c, out);
      if (ev != Event::kNone) {
        *consumed = i + 1;
        return ev;
      }
    }
    *consumed = in.size();
    return Event::kNone;
  }

 private:
  Event Step(char c, std::string* out) {
    if (esc_ < 0) {
      out->push_back(c);
      return Event::kNone;
    }
    if (after_esc_) {
      after_esc_ = false;
      switch (c) {
        case '.':
          return Event::kDisconnect;
        case 0x1a:
          return Event::kSuspend;  // ^Z
        case '?':
          return Event::kHelp;  // still at the start of a line
        default:
          if (c != static_cast<char>(esc_)) out->push_back(static_cast<char>(esc_));
          out->push_back(c);
          line_start_ = c == '\r' || c == '\n';
          return Event::kNone;
      }
    }
    if (line_start_ && c == static_cast<char>(esc_)) {
      after_esc_ = true;
      return Event::kNone;
    }
    out->push_back(c);
    line_start_ = c == '\r' || c == '\n';
    return Event::kNone;
  }

  int esc_;
  bool line_start_ = true;
  bool after_esc_ = false;
};

}  // namespace kata::ctl
