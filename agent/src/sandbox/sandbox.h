// The agent's state: the sandbox and its containers and processes.
#pragma once

#include "init/config.h"
#include "util/status.h"

namespace kata {

class Sandbox {
 public:
  explicit Sandbox(const AgentConfig& cfg) : cfg_(cfg) {}
  Status Init();
  const AgentConfig& config() const { return cfg_; }

 private:
  const AgentConfig& cfg_;
};

}  // namespace kata
