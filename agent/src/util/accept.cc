#include "util/accept.h"

#include <sys/socket.h>

#include <cerrno>

#include "util/log.h"
#include "util/status.h"
#include "util/strcat.h"

namespace kata {

void AcceptPending(int lfd, std::string_view what, const std::function<void(UniqueFd)>& on_conn) {
  for (;;) {
    int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0) {
      on_conn(UniqueFd(c));
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE) {
      log::Error(StrCat(what, ": accept: out of file descriptors")).Kv("error", ErrnoText(errno));
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      log::Warn(StrCat(what, ": accept failed")).Kv("error", ErrnoText(errno));
    }
    return;
  }
}

}  // namespace kata
