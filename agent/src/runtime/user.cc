#include "runtime/user.h"

#include <grp.h>
#include <unistd.h>

#include "runtime/errors.h"

namespace kata {

Status SetIds(const ProcessSpec& p) {
  if (setgroups(p.additional_gids.size(), p.additional_gids.data()) < 0) {
    return SysError(errno, "setgroups (", p.additional_gids.size(), " groups)");
  }
  if (setresgid(p.gid, p.gid, p.gid) < 0) return SysError(errno, "setresgid ", p.gid);
  if (setresuid(p.uid, p.uid, p.uid) < 0) return SysError(errno, "setresuid ", p.uid);
  return absl::OkStatus();
}

}  // namespace kata
