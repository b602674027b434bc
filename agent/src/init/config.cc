#include "init/config.h"

#include <charconv>

#include "util/strcat.h"

namespace kata {
namespace {

bool ParseU32(std::string_view s, uint32_t* out) {
  if (s.empty()) return false;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  *out = v;
  return true;
}

// Boolean switches may be given bare ("agent.debug_console") or with a value.
bool ParseBool(std::string_view value, bool bare, bool* out) {
  if (bare || value == "1" || value == "true" || value == "on" || value == "yes") {
    *out = true;
    return true;
  }
  if (value == "0" || value == "false" || value == "off" || value == "no") {
    *out = false;
    return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> SplitCmdline(std::string_view cmdline) {
  std::vector<std::string> words;
  std::string cur;
  bool in_quote = false, have = false;
  for (char c : cmdline) {
    if (c == '"') {
      in_quote = !in_quote;
      have = true;
      continue;
    }
    if (!in_quote && (c == ' ' || c == '\t' || c == '\n')) {
      if (have) words.push_back(std::move(cur));
      cur.clear();
      have = false;
      continue;
    }
    cur.push_back(c);
    have = true;
  }
  if (have) words.push_back(std::move(cur));
  return words;
}

std::vector<CmdlineNote> ParseKernelCmdline(std::string_view cmdline, AgentConfig* cfg) {
  std::vector<CmdlineNote> notes;
  auto bad = [&](std::string_view key, std::string_view value, std::string_view dflt) {
    notes.push_back({log::Level::kWarn, StrCat("invalid value '", value, "' for ", key,
                                               ", using the default ", dflt)});
  };
  for (const std::string& word : SplitCmdline(cmdline)) {
    if (word.rfind("agent.", 0) != 0) continue;
    size_t eq = word.find('=');
    std::string_view key = std::string_view(word).substr(0, eq);
    std::string_view value =
        eq == std::string::npos ? std::string_view() : std::string_view(word).substr(eq + 1);
    bool bare = eq == std::string::npos;

    if (key == "agent.log") {
      log::Level l;
      if (ParseLevel(value, &l))
        cfg->log_level = l;
      else
        bad(key, value, LevelName(cfg->log_level));
    } else if (key == "agent.server_addr") {
      if (value.empty())
        bad(key, value, "vsock://-1:1024");
      else
        cfg->server_addr = std::string(value);
    } else if (key == "agent.debug_console") {
      if (!ParseBool(value, bare, &cfg->debug_console)) bad(key, value, "off");
    } else if (key == "agent.debug_console_vport") {
      uint32_t v;
      if (ParseU32(value, &v))
        cfg->debug_console_vport = v;
      else
        bad(key, value, "0 (off)");
    } else if (key == "agent.log_vport") {
      uint32_t v;
      if (ParseU32(value, &v))
        cfg->log_vport = v;
      else
        bad(key, value, "0 (off)");
    } else if (key == "agent.hotplug_timeout") {
      uint32_t v;
      if (ParseU32(value, &v) && v > 0)
        cfg->hotplug_timeout_s = v;
      else
        bad(key, value, std::to_string(cfg->hotplug_timeout_s));
    } else if (key == "agent.container_pipe_size") {
      uint32_t v;
      if (ParseU32(value, &v))
        cfg->container_pipe_size = v;
      else
        bad(key, value, "0 (kernel default)");
    } else if (key == "agent.sniff_timeout") {
      uint32_t v;
      if (ParseU32(value, &v) && v > 0)
        cfg->sniff_timeout_s = v;
      else
        bad(key, value, std::to_string(cfg->sniff_timeout_s));
    } else if (key == "agent.memory_reserve_mb") {
      uint32_t v;
      if (ParseU32(value, &v))
        cfg->memory_reserve_mb = v;
      else
        bad(key, value, "0 (MemTotal/16 within 64..256 MiB)");
    } else if (key == "agent.policy") {
      cfg->policy_path = std::string(value);
    } else {
      notes.push_back({log::Level::kInfo, StrCat("ignoring unknown option ", word)});
    }
  }
  return notes;
}

std::vector<CmdlineNote> ApplyEnvironment(const char* (*getenv_fn)(const char*), AgentConfig* cfg) {
  std::vector<CmdlineNote> notes;
  if (const char* v = getenv_fn("KATA_AGENT_SERVER_ADDR"); v && *v) cfg->server_addr = v;
  if (const char* v = getenv_fn("KATA_AGENT_LOG_LEVEL"); v && *v) {
    log::Level l;
    if (log::ParseLevel(v, &l)) {
      cfg->log_level = l;
    } else {
      notes.push_back({log::Level::kWarn, StrCat("invalid KATA_AGENT_LOG_LEVEL '", v, "', keeping ",
                                                 LevelName(cfg->log_level))});
    }
  }
  return notes;
}

}  // namespace kata
