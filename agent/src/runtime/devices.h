// Device nodes in the container's /dev: the OCI default set (null, zero, full, random,
// urandom, tty) plus the spec's devices, and the usual links (/dev/fd, /dev/stdin, ...,
// /dev/ptmx -> pts/ptmx).
//
//   RETURN_IF_ERROR(CreateDevices(root_fd, DevicesToCreate(spec), in_userns));
//   RETURN_IF_ERROR(CreateDevLinks(root_fd));
//
// In a new user namespace mknod is not allowed; each device is then a bind mount of the
// same node from the agent's /dev, as runc does.
#pragma once

#include <vector>

#include "runtime/spec.h"
#include "util/status.h"

namespace kata {

std::vector<DeviceSpec> DefaultDevices();

// The default devices the spec does not override (by path), then the spec's. Pure.
std::vector<DeviceSpec> DevicesToCreate(const ContainerSpec& spec);

Status CreateDevices(int root_fd, const std::vector<DeviceSpec>& devices, bool bind_from_host);

// /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr, /dev/ptmx; an existing entry is kept.
Status CreateDevLinks(int root_fd);

}  // namespace kata
