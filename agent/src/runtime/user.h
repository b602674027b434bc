// The container process's identity: supplementary groups, gid, uid (numeric, from the
// spec). Called as the last privileged step of set-up, before the wait for Start.
#pragma once

#include "runtime/spec.h"
#include "util/status.h"

namespace kata {

Status SetIds(const ProcessSpec& p);

}  // namespace kata
