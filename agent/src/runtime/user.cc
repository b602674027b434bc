#include "runtime/user.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "runtime/errors.h"
#include "runtime/path.h"
#include "util/unique_fd.h"

namespace kata {
namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) {
      out.push_back(s.substr(i));
      return out;
    }
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
}

// A decimal id of at most 32 bits, nothing else (no sign, no blanks).
std::optional<uint32_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    fn(line);
  }
}

bool Has(const std::optional<std::string>& s) { return s.has_value(); }

std::string Quoted(std::string_view s) { return StrCat("\"", s, "\""); }

StatusOr<gid_t> ResolveGroup(std::string_view what, const std::string& g,
                             const std::vector<GroupEntry>& groups, bool have_file) {
  if (std::optional<uint32_t> id = ParseId(g)) return *id;
  if (!have_file) {
    return absl::InvalidArgumentError(
        StrCat(what, " ", Quoted(g), ": the container has no /etc/group"));
  }
  for (const GroupEntry& e : groups) {
    if (e.name == g) return e.gid;
  }
  return absl::InvalidArgumentError(StrCat(what, " ", Quoted(g), ": no such group in /etc/group"));
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  ForEachLine(text, [&](std::string_view line) {
    std::vector<std::string_view> f = Split(line, ':');
    if (f.size() < 7 || f[0].empty()) return;
    std::optional<uint32_t> uid = ParseId(f[2]), gid = ParseId(f[3]);
    if (!uid || !gid) return;
    out.push_back({std::string(f[0]), *uid, *gid, std::string(f[5])});
  });
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  ForEachLine(text, [&](std::string_view line) {
    std::vector<std::string_view> f = Split(line, ':');
    if (f.size() < 4 || f[0].empty()) return;
    std::optional<uint32_t> gid = ParseId(f[2]);
    if (!gid) return;
    GroupEntry e{std::string(f[0]), *gid, {}};
    if (!f[3].empty()) {
      for (std::string_view m : Split(f[3], ',')) {
        if (!m.empty()) e.members.emplace_back(m);
      }
    }
    out.push_back(std::move(e));
  });
  return out;
}

Status ValidateUserNames(const UserNames& n) {
  auto check = [](std::string_view field, const std::string& s) -> Status {
    if (s.empty() || s.size() > 256 ||
        s.find_first_of(std::string_view(":\n\0", 3)) != std::string::npos) {
      return absl::InvalidArgumentError(
          StrCat("string_user.", field, ": ", Quoted(s), " is not a user or group name or id"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(check("uid", n.user));
  if (!n.group.empty()) RETURN_IF_ERROR(check("gid", n.group));
  if (n.additional.size() > 65536) {
    return absl::InvalidArgumentError("string_user.additionalGids: too many groups");
  }
  for (size_t i = 0; i < n.additional.size(); i++) {
    RETURN_IF_ERROR(check(StrCat("additionalGids[", i, "]"), n.additional[i]));
  }
  return absl::OkStatus();
}

StatusOr<Identity> ResolveIdentity(const ProcessSpec& p, const std::optional<std::string>& passwd,
                                   const std::optional<std::string>& group) {
  std::vector<PasswdEntry> users = passwd ? ParsePasswd(*passwd) : std::vector<PasswdEntry>{};
  Identity id;
  id.uid = p.uid;
  id.gid = p.gid;
  id.additional_gids = p.additional_gids;
  const PasswdEntry* entry = nullptr;

  if (p.names) {
    const UserNames& n = *p.names;
    if (std::optional<uint32_t> uid = ParseId(n.user)) {
      id.uid = *uid;
      for (const PasswdEntry& e : users) {
        if (e.uid == *uid) {
          entry = &e;
          break;
        }
      }
    } else {
      if (!passwd) {
        return absl::InvalidArgumentError(
            StrCat("user ", Quoted(n.user), ": the container has no /etc/passwd"));
      }
      for (const PasswdEntry& e : users) {
        if (e.name == n.user) {
          entry = &e;
          break;
        }
      }
      if (!entry) {
        return absl::InvalidArgumentError(
            StrCat("user ", Quoted(n.user), ": no such user in /etc/passwd"));
      }
      id.uid = entry->uid;
    }
    std::vector<GroupEntry> groups = group ? ParseGroup(*group) : std::vector<GroupEntry>{};
    if (!n.group.empty()) {
      ASSIGN_OR_RETURN(id.gid, ResolveGroup("group", n.group, groups, Has(group)));
    } else if (entry) {
      id.gid = entry->gid;
    }
    if (!n.additional.empty()) {
      id.additional_gids.clear();
      for (const std::string& g : n.additional) {
        ASSIGN_OR_RETURN(gid_t gid, ResolveGroup("additional group", g, groups, Has(group)));
        id.additional_gids.push_back(gid);
      }
    }
    if (entry) {
      for (const GroupEntry& g : groups) {
        if (std::find(g.members.begin(), g.members.end(), entry->name) != g.members.end()) {
          id.additional_gids.push_back(g.gid);
        }
      }
    }
    std::vector<gid_t> uniq;
    for (gid_t g : id.additional_gids) {
      if (std::find(uniq.begin(), uniq.end(), g) == uniq.end()) uniq.push_back(g);
    }
    id.additional_gids = std::move(uniq);
  }

  if (!entry) {
    for (const PasswdEntry& e : users) {
      if (e.uid == id.uid) {
        entry = &e;
        break;
      }
    }
  }
  id.home = entry && !entry->home.empty() ? entry->home : "/";
  return id;
}

StatusOr<std::optional<std::string>> ReadFileInRoot(int root_fd, std::string_view path,
                                                    size_t max_bytes) {
  StatusOr<UniqueFd> fd = OpenInRoot(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd.status().code() == absl::StatusCode::kNotFound) return std::optional<std::string>();
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (fstat(fd->get(), &st) < 0) return SysError(errno, "stat ", path);
  if (!S_ISREG(st.st_mode)) return SysError(EINVAL, path, " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return SysError(EFBIG, path, " is larger than ", max_bytes, " bytes");
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError(errno, "read ", path);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return SysError(EFBIG, path, " is larger than ", max_bytes, " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(out));
}

Status ResolveUser(ProcessSpec* p) {
  bool has_home = false;
  for (const std::string& e : p->env) has_home |= e.rfind("HOME=", 0) == 0;
  if (!p->names && has_home) return absl::OkStatus();
  UniqueFd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return SysError(errno, "open /");
  std::optional<std::string> passwd, group;
  StatusOr<std::optional<std::string>> pw =
      ReadFileInRoot(root.get(), "/etc/passwd", kMaxUserDbBytes);
  if (pw.ok()) {
    passwd = std::move(*pw);
  } else if (p->names) {
    return pw.status();  // names cannot be resolved without it
  }
  if (p->names) {
    ASSIGN_OR_RETURN(group, ReadFileInRoot(root.get(), "/etc/group", kMaxUserDbBytes));
  }
  ASSIGN_OR_RETURN(Identity id, ResolveIdentity(*p, passwd, group));
  p->uid = id.uid;
  p->gid = id.gid;
  p->additional_gids = std::move(id.additional_gids);
  if (!has_home) p->env.push_back("HOME=" + id.home);
  return absl::OkStatus();
}

Status SetIds(const ProcessSpec& p, bool keep_caps) {
  if (keep_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return SysError(errno, "PR_SET_KEEPCAPS");
  if (setgroups(p.additional_gids.size(), p.additional_gids.data()) < 0) {
    return SysError(errno, "setgroups (", p.additional_gids.size(), " groups)");
  }
  if (setresgid(p.gid, p.gid, p.gid) < 0) return SysError(errno, "setresgid ", p.gid);
  if (setresuid(p.uid, p.uid, p.uid) < 0) return SysError(errno, "setresuid ", p.uid);
  if (keep_caps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return SysError(errno, "PR_SET_KEEPCAPS");
  return absl::OkStatus();
}

}  // namespace kata
