// The API policy: which methods a client may call, and what ExecProcess may run and where
// CopyFile may write. The document format is ours (docs/policy.md: a JSON object read by
// util/json); upstream's Rego policies are refused by name.
//
//   ASSIGN_OR_RETURN(Policy p, Policy::Parse(text, known_method));
//   RETURN_IF_ERROR(store.Install(std::move(p), "agent.policy=/etc/kata/policy.json"));
//   ...
//   Status st = store.Admit("grpc.AgentService/ExecProcess", request_bytes);
//      -> PERMISSION_DENIED "policy: ExecProcess argv [\"/bin/rm\", \"-rf\", \"/\"] matches
//         no allowed pattern"
//
// A policy is installed at most once (from the kernel command line at boot, or by one
// SetPolicy); until then every call is admitted, as upstream does without a policy.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "util/status.h"

namespace kata {

class Policy {
 public:
  // Parses a policy document. `known_method` says whether a full method name
  // ("grpc.AgentService/ExecProcess") exists; names it rejects make the document invalid.
  // Errors are INVALID_ARGUMENT naming what is wrong.
  static StatusOr<Policy> Parse(std::string_view text,
                                const std::function<bool(std::string_view)>& known_method);

  // OK, or PERMISSION_DENIED saying why. `request` is the serialized request message.
  Status Admit(std::string_view method, std::string_view request) const;

  // For the log line that reports the policy in force.
  size_t allowed_count() const { return allow_.size(); }
  size_t denied_count() const { return deny_.size(); }
  bool restricts_exec() const { return has_exec_rules_; }
  bool restricts_copy_file() const { return has_copy_rules_; }

  // Exposed for unit tests.
  static bool ArgvMatches(const std::vector<std::string>& pattern,
                          const std::vector<std::string>& argv);
  static bool PathMatches(std::string_view pattern, std::string_view path);

 private:
  std::unordered_set<std::string> allow_;  // empty: every method
  std::unordered_set<std::string> deny_;
  bool has_exec_rules_ = false;
  std::vector<std::vector<std::string>> argv_patterns_;
  bool has_copy_rules_ = false;
  std::vector<std::string> path_patterns_;
};

// The agent's policy, installed once, read by every call without a lock.
class PolicyStore {
 public:
  // FAILED_PRECONDITION when a policy is already in force (it cannot be replaced: a client
  // that could swap it could lift it).
  Status Install(Policy policy, std::string source);

  // OK when no policy is in force. A refusal is logged and counted.
  Status Admit(std::string_view method, std::string_view request) const;

  uint64_t denied_total() const { return denied_.load(std::memory_order_relaxed); }

 private:
  struct Installed {
    Policy policy;
    std::string source;
  };
  std::mutex install_mu_;
  std::unique_ptr<Installed> owned_;  // set once, never freed while the agent runs
  std::atomic<const Installed*> current_{nullptr};
  mutable std::atomic<uint64_t> denied_{0};
};

}  // namespace kata
