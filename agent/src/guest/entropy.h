// ReseedRandomDev: the runtime hands the guest random bytes from the host (after a snapshot
// restore every clone would otherwise share one entropy pool state).
#pragma once

#include <string_view>

#include "util/status.h"

namespace kata {

// Mixes data into the kernel's input pool with RNDADDENTROPY on /dev/random, crediting
// 8 bits per byte (the host's randomness is trusted, as the Kata runtime intends).
Status AddEntropy(std::string_view data);

inline constexpr size_t kMaxEntropyBytes = 1 << 20;

}  // namespace kata
