// The container process's identity: uid, gid, supplementary groups, and HOME.
//
// Names (CreateContainer's and ExecProcess's StringUser) are looked up in the container's
// own /etc/passwd and /etc/group by the parser below, never through glibc: the agent is
// static, and static glibc's getpwnam/getgrnam/getgrouplist/initgroups load the NSS
// module the CONTAINER's /etc/nsswitch.conf names, with the container's libc, i.e. run
// container code in the set-up process (the build checks they are not linked). The files
// are opened inside the container's root with openat2(RESOLVE_IN_ROOT), must be regular
// files, and are read up to kMaxUserDbBytes.
//
//   RETURN_IF_ERROR(ResolveUser(&spec.process, &warnings));  // after pivot_root (or, for an
//                                                            // exec, after setns): names ->
//                                                            // ids, HOME when absent
//   RETURN_IF_ERROR(SetIds(spec.process, keep_caps));        // setgroups, setresgid, setresuid
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/spec.h"
#include "util/status.h"

namespace kata {

inline constexpr size_t kMaxUserDbBytes = 4 << 20;

struct PasswdEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  gid_t gid = 0;
  std::vector<std::string> members;
};

// passwd(5) and group(5) text; comments, NIS (+/-) and malformed lines are skipped. Pure.
std::vector<PasswdEntry> ParsePasswd(std::string_view text);
std::vector<GroupEntry> ParseGroup(std::string_view text);

// Names as the request gave them: each a name or a decimal id. user empty: no names.
Status ValidateUserNames(const UserNames& n);

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::string home;  // of the passwd entry of uid; "/" without one
};

// The identity of p: p's numeric ids, or with p.names:
//   uid: the user's number, or the passwd entry of that name;
//   gid: the group's number or /etc/group entry of that name; without a group, the
//        passwd entry's primary group (the spec's gid if the user has no entry);
//   supplementary: the additional groups named (else the spec's), plus every group
//        /etc/group lists the user in (what initgroups(3) would add).
// passwd/group are the files' text, nullopt where missing. Pure.
StatusOr<Identity> ResolveIdentity(const ProcessSpec& p, const std::optional<std::string>& passwd,
                                   const std::optional<std::string>& group);

// Reads a file inside root_fd (openat2 RESOLVE_IN_ROOT, O_NONBLOCK: never waits on a
// fifo); nullopt when it does not exist. A file that is not regular or is larger than
// max_bytes is an error.
StatusOr<std::optional<std::string>> ReadFileInRoot(int root_fd, std::string_view path,
                                                    size_t max_bytes);

// Resolves p's identity in the current root (the container's) and writes it back into
// p: uid, gid, additional_gids, and HOME=<home> appended to env when env has no HOME.
// Reads /etc/passwd and /etc/group only when needed.
Status ResolveUser(ProcessSpec* p);

// setgroups, setresgid, setresuid. keep_caps: the permitted set survives the uid change
// (PR_SET_KEEPCAPS), for the capabilities to be set afterwards.
Status SetIds(const ProcessSpec& p, bool keep_caps);

}  // namespace kata
