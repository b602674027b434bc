// Draining a non-blocking listening socket (epoll-driven servers: the debug console, the
// log port).
//
//   AcceptPending(listen_.get(), "log port", [&](UniqueFd c) { ... });
#pragma once

#include <functional>
#include <string_view>

#include "util/unique_fd.h"

namespace kata {

// Accepts every connection waiting on `lfd` (close-on-exec, non-blocking) and hands each to
// `on_conn`; returns when none is left. Failures are logged under `what` (running out of
// fds as an error) and end the round; an aborted connection is skipped silently.
void AcceptPending(int lfd, std::string_view what, const std::function<void(UniqueFd)>& on_conn);

}  // namespace kata
