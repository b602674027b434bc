#!/bin/sh
# Builds the busybox container rootfs the tests use:
#
#   rootfs-builder/test-rootfs.sh OUTDIR [BUSYBOX]
#
# OUTDIR gets bin/busybox (a static busybox, by default /bin/busybox from busybox-static),
# a symlink for every applet at its usual place (bin/sh, usr/bin/env, sbin/ip, ...),
# /etc/passwd and /etc/group with root and an unprivileged user (uid/gid 1000), and
# /etc/hostname, plus the empty directories a container expects (proc, sys, dev, tmp, ...).
# The same inputs give the same tree: fixed modes, no timestamps taken from the build.
# Prints OUTDIR.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUTDIR [BUSYBOX]" >&2
  exit 2
fi
out=$1
busybox=${2:-/bin/busybox}

if [ ! -x "$busybox" ]; then
  echo "$0: $busybox not found (apt-get install busybox-static)" >&2
  exit 1
fi
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  # A dynamic busybox would need the host's libc inside the container.
  echo "$0: $busybox is not statically linked (install busybox-static)" >&2
  exit 1
fi

umask 022
mkdir -p "$out"
for d in bin sbin usr/bin usr/sbin etc proc sys dev tmp root home/user var/tmp run mnt; do
  mkdir -p "$out/$d"
done
chmod 1777 "$out/tmp" "$out/var/tmp"
chmod 0700 "$out/root"

cp "$busybox" "$out/bin/busybox"
chmod 0755 "$out/bin/busybox"
"$busybox" --list-full | LC_ALL=C sort | while read -r applet; do
  case "$applet" in
    bin/busybox|"") continue ;;
  esac
  mkdir -p "$out/$(dirname "$applet")"
  ln -sfn /bin/busybox "$out/$applet"
done

cat > "$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:Unprivileged user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$out/etc/group" <<'EOF'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
EOF
echo "kata-test" > "$out/etc/hostname"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/hostname"
chown 1000:1000 "$out/home/user" 2>/dev/null || true

# Fixed timestamps (links included) so two builds are byte-for-byte the same tree.
find "$out" -exec touch -h -d @0 {} +
echo "$out"
