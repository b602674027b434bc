#include "sandbox/sandbox.h"

namespace kata {

Status Sandbox::Init() { return absl::OkStatus(); }

}  // namespace kata
