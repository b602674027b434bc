#!/bin/bash
# Packs a directory tree into an ext4 disk image (e.g. a container rootfs for virtio-blk).
# usage: rootfs-builder/build-disk-image.sh SRCDIR IMAGE [EXTRA_MB]
set -euo pipefail
src=$1 img=$2 extra_mb=${3:-16}
size_kb=$(( $(du -sk "$src" | cut -f1) * 3 / 2 + extra_mb * 1024 ))
rm -f "$img.tmp"
E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -L kata-disk -E root_owner=0:0 -d "$src" "$img.tmp" "${size_kb}k" >/dev/null
mv "$img.tmp" "$img"
echo "disk image: $img $(stat -c %s "$img") bytes"
