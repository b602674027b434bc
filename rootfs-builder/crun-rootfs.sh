#!/bin/sh
# Builds the rootfs of the crun comparison tests: the busybox test rootfs
# (test-rootfs.sh) plus crun with every shared library it loads (as ldd lists them, at
# the same paths) and the given static helpers in /bin.
#
#   rootfs-builder/crun-rootfs.sh OUTDIR [HELPER...]      # e.g. build/bin/sec-probe
#
# The tree serves both sides of a comparison inside one VM: a privileged container of the
# agent runs crun from it, and crun and the agent each run a container with it as rootfs.
# crun stays dynamically linked (Debian's); it runs only inside the guest.
set -eu

if [ $# -lt 1 ]; then
  echo "usage: $0 OUTDIR [HELPER...]" >&2
  exit 2
fi
out=$1
shift
here=$(dirname "$0")
crun=${CRUN:-/usr/bin/crun}
if [ ! -x "$crun" ]; then
  echo "$0: $crun not found (apt-get install crun)" >&2
  exit 1
fi

"$here/test-rootfs.sh" "$out" >/dev/null
mkdir -p "$out/usr/bin" "$out/run/crun"
cp "$crun" "$out/usr/bin/crun"
chmod 0755 "$out/usr/bin/crun"
# "libx.so.N => /lib/.../libx.so.N (0x...)" and the loader's own "/lib64/ld-linux... (0x...)".
ldd "$crun" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
  chmod 0755 "$out$lib"
done
for helper in "$@"; do
  cp "$helper" "$out/bin/$(basename "$helper")"
  chmod 0755 "$out/bin/$(basename "$helper")"
done
find "$out" -exec touch -h -d @0 {} +
echo "$out"
