#include "policy/policy.h"

#include <fnmatch.h>

#include <initializer_list>

#include "agent.pb.h"
#include "util/json.h"
#include "util/log.h"

namespace kata {
namespace {

constexpr uint32_t kVersion = 1;
constexpr size_t kMaxQuoted = 200;  // of an argv or path quoted in a refusal

constexpr std::string_view kAgentService = "grpc.AgentService/";
constexpr std::string_view kHealthService = "grpc.Health/";

std::string_view ShortName(std::string_view method) {
  size_t slash = method.rfind('/');
  return slash == std::string_view::npos ? method : method.substr(slash + 1);
}

// "ExecProcess" -> "grpc.AgentService/ExecProcess" (or grpc.Health's), a full name as is.
StatusOr<std::string> ResolveMethod(std::string_view name,
                                    const std::function<bool(std::string_view)>& known) {
  if (name.find('/') != std::string_view::npos) {
    if (known(name)) return std::string(name);
  } else {
    for (std::string_view svc : {kAgentService, kHealthService}) {
      std::string full = StrCat(svc, name);
      if (known(full)) return full;
    }
  }
  return absl::InvalidArgumentError(StrCat("policy: unknown method \"", name, "\""));
}

void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (out->size() > kMaxQuoted) break;
    if (c == '"' || c == '\\') out->push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) {
      out->append("?");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string QuoteArgv(const std::vector<std::string>& argv) {
  std::string out = "[";
  for (size_t i = 0; i < argv.size(); i++) {
    if (out.size() > kMaxQuoted) {
      out += ", ...";
      break;
    }
    if (i) out += ", ";
    AppendQuoted(&out, argv[i]);
  }
  return out + "]";
}

// "/a/./b//c" -> "/a/b/c". A relative path or one with a ".." component is refused:
// matching it lexically would say nothing about where it lands.
StatusOr<std::string> NormalizePath(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::PermissionDeniedError("policy: CopyFile path is not absolute");
  }
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') i++;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view comp = path.substr(i, j - i);
    i = j;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      return absl::PermissionDeniedError("policy: CopyFile path has a \"..\" component");
    }
    out += '/';
    out += comp;
  }
  return out.empty() ? std::string("/") : out;
}

Status TypeError(std::string_view field, std::string_view want) {
  return absl::InvalidArgumentError(StrCat("policy: \"", field, "\" must be ", want));
}

StatusOr<std::vector<std::string>> Strings(const Json& v, std::string_view field) {
  if (!v.is_array()) return TypeError(field, "an array of strings");
  std::vector<std::string> out;
  for (const Json& e : v.array()) {
    if (!e.is_string()) return TypeError(field, "an array of strings");
    out.push_back(e.string());
  }
  return out;
}

// An object whose keys are all among `allowed`.
Status ExpectObject(const Json& v, std::string_view field,
                    std::initializer_list<std::string_view> allowed) {
  if (!v.is_object()) return TypeError(field, "an object");
  for (const auto& [k, _] : v.object()) {
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || k == a;
    if (!ok) {
      return absl::InvalidArgumentError(
          StrCat("policy: unknown field \"", k, "\" in \"", field, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<Policy> Policy::Parse(std::string_view text,
                               const std::function<bool(std::string_view)>& known_method) {
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) {
    return absl::InvalidArgumentError("policy: the document is empty");
  }
  if (text[start] != '{') {
    std::string why =
        "policy: not a kata-agent policy document (a JSON object, see docs/policy.md)";
    if (text.substr(start).rfind("package", 0) == 0) {
      why += "; this looks like a Rego policy of the upstream agent, which is not supported";
    }
    return absl::InvalidArgumentError(why);
  }
  StatusOr<Json> parsed = ParseJson(text);
  if (!parsed.ok()) return Annotate(parsed.status(), "policy: invalid document");
  const Json& doc = *parsed;
  if (!doc.is_object()) return absl::InvalidArgumentError("policy: the document is not an object");
  Policy p;
  bool have_version = false;
  for (const auto& [key, value] : doc.object()) {
    if (key == "version") {
      if (!value.is_number() || value.number() != kVersion) {
        return absl::InvalidArgumentError(
            StrCat("policy: version must be ", kVersion, " (the version this agent reads)"));
      }
      have_version = true;
    } else if (key == "allow" || key == "deny") {
      ASSIGN_OR_RETURN(std::vector<std::string> names, Strings(value, key));
      for (const std::string& name : names) {
        if (key == "allow" && name == "*") continue;  // the same as an empty list
        ASSIGN_OR_RETURN(std::string full, ResolveMethod(name, known_method));
        (key == "allow" ? p.allow_ : p.deny_).insert(std::move(full));
      }
    } else if (key == "exec") {
      RETURN_IF_ERROR(ExpectObject(value, "exec", {"allowedArgv", "allowed_argv"}));
      p.has_exec_rules_ = true;
      for (const auto& [k, patterns] : value.object()) {
        if (!patterns.is_array()) return TypeError(k, "an array of {\"args\": [...]} objects");
        for (const Json& pat : patterns.array()) {
          RETURN_IF_ERROR(ExpectObject(pat, k, {"args"}));
          const Json* args_json = pat.Find("args");
          if (args_json == nullptr) return TypeError(k, "an array of {\"args\": [...]} objects");
          ASSIGN_OR_RETURN(std::vector<std::string> args, Strings(*args_json, "args"));
          if (args.empty()) {
            return absl::InvalidArgumentError("policy: an exec argv pattern is empty");
          }
          for (size_t i = 0; i + 1 < args.size(); i++) {
            if (args[i] == "...") {
              return absl::InvalidArgumentError(
                  StrCat("policy: \"...\" may only end an exec argv pattern, not be argument ", i));
            }
          }
          p.argv_patterns_.push_back(std::move(args));
        }
      }
    } else if (key == "copyFile" || key == "copy_file") {
      RETURN_IF_ERROR(ExpectObject(value, key, {"allowedPaths", "allowed_paths"}));
      p.has_copy_rules_ = true;
      for (const auto& [k, paths] : value.object()) {
        ASSIGN_OR_RETURN(std::vector<std::string> pats, Strings(paths, k));
        for (std::string& pat : pats) {
          if (pat.empty() || pat[0] != '/') {
            return absl::InvalidArgumentError(
                StrCat("policy: CopyFile path pattern \"", pat, "\" is not absolute"));
          }
          p.path_patterns_.push_back(std::move(pat));
        }
      }
    } else {
      return absl::InvalidArgumentError(StrCat("policy: unknown field \"", key, "\""));
    }
  }
  if (!have_version) return absl::InvalidArgumentError("policy: no \"version\" (1)");
  return p;
}

bool Policy::ArgvMatches(const std::vector<std::string>& pattern,
                         const std::vector<std::string>& argv) {
  const bool open_ended = !pattern.empty() && pattern.back() == "...";
  const size_t fixed = open_ended ? pattern.size() - 1 : pattern.size();
  if (open_ended ? argv.size() < fixed : argv.size() != fixed) return false;
  for (size_t i = 0; i < fixed; i++) {
    if (fnmatch(pattern[i].c_str(), argv[i].c_str(), 0) != 0) return false;
  }
  return true;
}

bool Policy::PathMatches(std::string_view pattern, std::string_view path) {
  constexpr std::string_view kBelow = "/**";
  if (pattern.size() >= kBelow.size() && pattern.substr(pattern.size() - kBelow.size()) == kBelow) {
    std::string_view prefix = pattern.substr(0, pattern.size() - kBelow.size());
    // "/**" alone: everything. Otherwise strictly below the prefix.
    if (prefix.empty()) return true;
    return path.size() > prefix.size() + 1 && path.substr(0, prefix.size()) == prefix &&
           path[prefix.size()] == '/';
  }
  return fnmatch(std::string(pattern).c_str(), std::string(path).c_str(), FNM_PATHNAME) == 0;
}

Status Policy::Admit(std::string_view method, std::string_view request) const {
  const std::string m(method);
  if (deny_.count(m) || (!allow_.empty() && !allow_.count(m))) {
    return absl::PermissionDeniedError(
        StrCat("policy: ", ShortName(method), " is not allowed by the agent's policy"));
  }
  if (has_exec_rules_ && method == "grpc.AgentService/ExecProcess") {
    grpc::ExecProcessRequest req;
    if (!req.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
      return absl::InvalidArgumentError(
          "ExecProcess: the request is not a valid grpc.ExecProcessRequest");
    }
    std::vector<std::string> argv(req.process().args().begin(), req.process().args().end());
    for (const auto& pat : argv_patterns_) {
      if (ArgvMatches(pat, argv)) return absl::OkStatus();
    }
    return absl::PermissionDeniedError(
        StrCat("policy: ExecProcess argv ", QuoteArgv(argv), " matches no allowed pattern"));
  }
  if (has_copy_rules_ && method == "grpc.AgentService/CopyFile") {
    grpc::CopyFileRequest req;
    if (!req.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
      return absl::InvalidArgumentError(
          "CopyFile: the request is not a valid grpc.CopyFileRequest");
    }
    ASSIGN_OR_RETURN(std::string path, NormalizePath(req.path()));
    for (const auto& pat : path_patterns_) {
      if (PathMatches(pat, path)) return absl::OkStatus();
    }
    std::string quoted;
    AppendQuoted(&quoted, path);
    return absl::PermissionDeniedError(
        StrCat("policy: CopyFile path ", quoted, " matches no allowed pattern"));
  }
  return absl::OkStatus();
}

Status PolicyStore::Install(Policy policy, std::string source) {
  std::lock_guard<std::mutex> lock(install_mu_);
  if (owned_) {
    return absl::FailedPreconditionError(StrCat("policy: a policy is already in force (",
                                                owned_->source, "); it cannot be replaced"));
  }
  owned_ = std::make_unique<Installed>(Installed{std::move(policy), std::move(source)});
  const Policy& p = owned_->policy;
  log::Info("policy in force")
      .Kv("given_by", owned_->source)
      .Kv("allowed_methods", p.allowed_count() ? std::to_string(p.allowed_count()) : "all")
      .Kv("denied_methods", static_cast<uint64_t>(p.denied_count()))
      .Kv("exec_rules", p.restricts_exec())
      .Kv("copy_file_rules", p.restricts_copy_file());
  current_.store(owned_.get(), std::memory_order_release);
  return absl::OkStatus();
}

Status PolicyStore::Admit(std::string_view method, std::string_view request) const {
  const Installed* in = current_.load(std::memory_order_acquire);
  if (in == nullptr) return absl::OkStatus();
  Status st = in->policy.Admit(method, request);
  if (st.code() == absl::StatusCode::kPermissionDenied) {
    denied_.fetch_add(1, std::memory_order_relaxed);
    log::Warn("policy denied a call").Kv("method", method).Kv("reason", st.message());
  }
  return st;
}

}  // namespace kata
