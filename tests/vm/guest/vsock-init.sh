#!/bin/sh
# The initial process (rdinit=) of the vsock test initrd: vsock-echo listeners on fixed guest
# ports, then idle. The host side reaches them through vsockd's hybrid vsock socket.
#   5000 echo   5001 sink   5002 source (reads "N\n" first)   5003 dial (guest -> host)
#   5004 count  5005 blast (reads "N\n" first): no hashing, for throughput
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
vsock-echo listen 5000 echo &
vsock-echo listen 5001 sink &
vsock-echo listen 5002 source &
vsock-echo listen 5003 dial &
vsock-echo listen 5004 count &
vsock-echo listen 5005 blast &
while :; do sleep 3600; done
