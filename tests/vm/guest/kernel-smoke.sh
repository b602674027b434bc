#!/bin/sh
# Guest kernel smoke test, run as the initial process (rdinit=) of the test initrd:
# uses each group of kernel options once and prints "SMOKE <name> ok|FAIL <why>", then
# "SMOKE-DONE" and powers off. The VM test reads the console.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
check() { name=$1; shift; if out=$("$@" 2>&1); then echo "SMOKE $name ok"; else echo "SMOKE $name FAIL $(echo $out | head -c 300)"; fi; }

check cgroup2 mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
controllers=$(cat /sys/fs/cgroup/cgroup.controllers)
echo "SMOKE-CONTROLLERS $controllers"
check subtree sh -c 'for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo +$c > /sys/fs/cgroup/cgroup.subtree_control || exit 1; done'
mkdir -p /sys/fs/cgroup/smoke
check memory.swap.max test -f /sys/fs/cgroup/smoke/memory.swap.max
check io.max test -f /sys/fs/cgroup/smoke/io.max
check cpu.max test -f /sys/fs/cgroup/smoke/cpu.max
check pids.max test -f /sys/fs/cgroup/smoke/pids.max
check cgroup.freeze test -f /sys/fs/cgroup/smoke/cgroup.freeze
check psi cat /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io
check bpf-device /usr/bin/bpf-dev-probe /sys/fs/cgroup/smoke
mkdir -p /dev/mqueue
check mqueue mount -t mqueue mqueue /dev/mqueue
check sysvipc /usr/bin/sysv-probe
check tmpfs mount -t tmpfs -o size=1m tmpfs /mnt
check overlay sh -c 'mkdir -p /mnt/l /mnt/u /mnt/w /mnt/o && mount -t overlay overlay -o lowerdir=/mnt/l,upperdir=/mnt/u,workdir=/mnt/w /mnt/o'
check namespaces sh -c 'for n in mnt uts ipc pid net user cgroup; do test -e /proc/self/ns/$n || exit 1; done'
check userns unshare -U -r id -u
check seccomp grep -q 'Seccomp:' /proc/self/status
check seccomp-filter test -f /proc/sys/kernel/seccomp/actions_avail
check filesystems sh -c 'for f in ext4 xfs erofs overlay tmpfs 9p virtiofs; do grep -qw $f /proc/filesystems || { echo missing $f; exit 1; }; done'
check vsock-family sh -c 'grep -q vsock /proc/net/protocols 2>/dev/null || ls /sys/bus/virtio/drivers | grep -q vsock'
check virtio-rng sh -c 'grep -q virtio /sys/class/misc/hw_random/rng_available'
check pci-hotplug sh -c 'ls /sys/bus/pci/slots | grep -q .'
check memory-probe test -e /sys/devices/system/memory/probe
check swap grep -q SwapTotal /proc/meminfo
check inotify test -d /proc/sys/fs/inotify
echo SMOKE-DONE
poweroff -f
