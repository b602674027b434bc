// PID 1 duties in the guest.
//
// Early set-up mounts /proc, /sys, /dev and re-roots off the initramfs: pivot_root(2)
// refuses to move the initramfs (rootfs) away (EINVAL, see the kernel's
// Documentation/filesystems/ramfs-rootfs-initramfs.rst), and containers need a working
// pivot_root. So, as switch_root does, the content is moved into a tmpfs, the tmpfs is
// MS_MOVEd onto /, and the agent re-executes itself from there.
#pragma once

#include <string_view>

#include "init/config.h"

namespace kata {

// Mounts, re-root (re-executes once), /dev links, loopback up. Never fails: a step that
// cannot be done is logged, a fatal one powers the VM off.
void Pid1EarlySetup(int argc, char** argv);

// Starts the PID 1 services the configuration asks for (debug console, log port).
void Pid1Services(const AgentConfig& cfg);

// Syncs and powers the VM off. Never returns.
[[noreturn]] void PowerOff(std::string_view reason);

// Blocks until the agent should stop: never as PID 1 (DestroySandbox powers off), on
// SIGTERM/SIGINT otherwise.
void WaitForTermination(bool pid1);

// True if / is the kernel's initramfs (fs type "rootfs" in mountinfo).
bool RootIsInitramfs();

}  // namespace kata
