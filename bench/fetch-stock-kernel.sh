#!/bin/bash
# Debian's stock 6.1 kernel for the boot benchmark's comparison, extracted (never installed:
# installing linux-image-* runs hooks on the host's /boot) into
# ~/.cache/kata-agent/stock-kernel/root/boot/vmlinuz-6.1*.
set -euo pipefail
DIR="${HOME}/.cache/kata-agent/stock-kernel"
if ls "$DIR"/root/boot/vmlinuz-6.1* >/dev/null 2>&1; then exit 0; fi
pkg=$(apt-cache search --names-only '^linux-image-6\.1\.[0-9.-]+-amd64-unsigned$' | awk '{print $1}' | sort -V | tail -1)
[ -n "$pkg" ] || { echo "fetch-stock-kernel: no linux-image-6.1*-amd64-unsigned in the apt lists" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
rm -f ./*.deb
apt-get download "$pkg" >/dev/null
dpkg-deb -x ./"$pkg"_*.deb root
rm -f ./*.deb
ls root/boot/vmlinuz-6.1*
