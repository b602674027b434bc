// SetGuestDateTime: the runtime sets the guest's wall clock after the VM was paused or
// restored from a snapshot (the guest's clock stood still meanwhile).
#pragma once

#include <cstdint>

#include "util/status.h"

namespace kata {

// Sets CLOCK_REALTIME to sec + usec/1e6. usec must be in [0, 1e6), sec not negative.
Status SetWallClock(int64_t sec, int64_t usec);

}  // namespace kata
