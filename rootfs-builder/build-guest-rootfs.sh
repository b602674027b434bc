#!/bin/bash
# Builds the guest root filesystem as disk images, with the same content as the initrd
# (the static agent as /sbin/init and /init), bootable from virtio-blk:
#   <outdir>/rootfs.ext4   root=/dev/vda rootfstype=ext4
#   <outdir>/rootfs.erofs  root=/dev/vda rootfstype=erofs (read-only by nature)
# usage: rootfs-builder/build-guest-rootfs.sh AGENT OUTDIR [--debug]
set -euo pipefail
agent=$1 out=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
"$here/../initrd/mkinitrd.py" --agent "$agent" --dir --out "$stage/root" "$@" >/dev/null
mkdir -p "$out"
size_kb=$(( $(du -sk "$stage/root" | cut -f1) * 3 / 2 + 8192 ))
rm -f "$out/rootfs.ext4.tmp"
E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -L kata-root -U 6b617461-2d61-6765-6e74-2d726f6f7466 \
  -E hash_seed=6b617461-2d61-6765-6e74-2d726f6f7466,root_owner=0:0 -d "$stage/root" \
  "$out/rootfs.ext4.tmp" "${size_kb}k" >/dev/null
mv "$out/rootfs.ext4.tmp" "$out/rootfs.ext4"
rm -f "$out/rootfs.erofs"
mkfs.erofs -q -T0 -U 6b617461-2d61-6765-6e74-2d726f6f7466 --all-root "$out/rootfs.erofs" "$stage/root" >/dev/null 2>&1 ||
  mkfs.erofs -T0 --all-root "$out/rootfs.erofs" "$stage/root" >/dev/null
echo "rootfs: $out/rootfs.ext4 $(stat -c %s "$out/rootfs.ext4") bytes, $out/rootfs.erofs $(stat -c %s "$out/rootfs.erofs") bytes"
