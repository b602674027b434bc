// The pod's DNS configuration (CreateSandbox.dns): the lines of the resolv.conf the Kata
// runtime read on the host ("nameserver 10.0.0.10", "search ns.svc.cluster.local", ...).
//
//   RETURN_IF_ERROR(ValidateDns(req.dns()));            // INVALID_ARGUMENT naming the entry
//   std::string text = ResolvConfText(lines);           // pure
//   RETURN_IF_ERROR(WriteSandboxResolvConf(path, text));
//   RETURN_IF_ERROR(BindGuestResolvConf(path));         // as PID 1: the guest's own
//
// As upstream: the file is <bundle dir>/sandbox/resolv.conf and is bind-mounted onto the
// guest's /etc/resolv.conf. Containers that mount /etc/resolv.conf get that file (the
// sandbox rewrites the source of such a bind mount; the runtime's copy in the shared
// directory holds the same lines).
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace kata {

inline constexpr char kGuestResolvConf[] = "/etc/resolv.conf";

// Each entry one line: no NUL, no newline; at most 256 entries of 1 KiB.
Status ValidateDns(const std::vector<std::string>& lines);
// The entries trimmed of surrounding blanks, one per line, ending with a newline.
std::string ResolvConfText(const std::vector<std::string>& lines);
// Writes text to path (its directory created).
Status WriteSandboxResolvConf(const std::string& path, const std::string& text);
// Bind-mounts path onto /etc/resolv.conf (created empty when missing; a directory there
// is FAILED_PRECONDITION). Undone by UnbindGuestResolvConf.
Status BindGuestResolvConf(const std::string& path);
void UnbindGuestResolvConf();

}  // namespace kata
