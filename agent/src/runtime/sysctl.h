// The spec's sysctls, written by the set-up process once it is in the container's
// namespaces (the /proc/sys files of network, ipc and uts settings act on the writer's
// namespaces). Keys were checked by ParseSpec (namespaced ones only).
#pragma once

#include <map>
#include <string>

#include "util/status.h"

namespace kata {

// "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward". Pure.
std::string SysctlPath(std::string_view key);

Status WriteSysctls(const std::map<std::string, std::string>& sysctls);

}  // namespace kata
