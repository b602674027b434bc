#!/usr/bin/python3
"""Builds the guest initrd: a gzip-compressed cpio (newc) archive, byte-for-byte
reproducible (sorted entries, fixed owners, mtimes and inode numbers, normalised modes,
no gzip name or timestamp).

  initrd/mkinitrd.py --agent build/bin/kata-agent --out build/guest/initrd.img
  initrd/mkinitrd.py --agent ... --out ... --debug            # + busybox for a debug shell
  initrd/mkinitrd.py --agent ... --out ... --debug \\
      --add tests/vm/guest/vsock-echo:/usr/bin/vsock-echo \\
      --tree build/guest/busybox-rootfs:/opt/kata-test/busybox   # test variant

Production content: the static agent as /init, /dev/console (the kernel opens it for
init's stdio before any devtmpfs exists), and the empty mount points the agent uses.
"""
import argparse
import gzip
import hashlib
import io
import os
import stat
import subprocess
import sys

DIRS = ["dev", "proc", "sys", "run", "tmp", "etc", "sbin", "bin", "usr", "usr/bin", "var", "mnt"]
NODES = [("dev/console", stat.S_IFCHR | 0o600, 5, 1), ("dev/null", stat.S_IFCHR | 0o666, 1, 3)]


class Cpio:
    """newc writer. Entries are collected, then written sorted by path."""

    def __init__(self):
        self.entries = {}  # path -> (mode, data, rdevmajor, rdevminor)

    def add_dir(self, path, mode=0o755):
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p and p not in self.entries:
                self.entries[p] = (stat.S_IFDIR | (mode if i == len(parts) else 0o755), b"", 0, 0)

    def add_file(self, path, data, executable):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path)) if os.path.dirname(path) else None
        self.entries[path] = (stat.S_IFREG | (0o755 if executable else 0o644), data, 0, 0)

    def add_symlink(self, path, target):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path)) if os.path.dirname(path) else None
        self.entries[path] = (stat.S_IFLNK | 0o777, target.encode(), 0, 0)

    def add_node(self, path, mode, major, minor):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path))
        self.entries[path] = (mode, b"", major, minor)

    def add_tree(self, src, dst):
        """Adds a host directory tree (files, dirs, symlinks; modes normalised)."""
        dst = dst.strip("/")
        self.add_dir(dst)
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = os.path.relpath(root, src)
            base = dst if rel == "." else f"{dst}/{rel}"
            for d in dirs:
                full = os.path.join(root, d)
                if os.path.islink(full):
                    self.add_symlink(f"{base}/{d}", os.readlink(full))
                else:
                    st = os.lstat(full)
                    self.add_dir(f"{base}/{d}", 0o1777 if st.st_mode & stat.S_ISVTX else 0o755)
            for f in sorted(files):
                full = os.path.join(root, f)
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    self.add_symlink(f"{base}/{f}", os.readlink(full))
                elif stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as fh:
                        self.add_file(f"{base}/{f}", fh.read(), bool(st.st_mode & 0o111))

    def extract(self, dest):
        """Writes the entries as a directory tree (for the disk-image rootfs builder).
        Device nodes are made only when running as root (mkfs.ext4 -d copies them)."""
        for path in sorted(self.entries):
            mode, data, major, minor = self.entries[path]
            full = os.path.join(dest, path)
            if stat.S_ISDIR(mode):
                os.makedirs(full, exist_ok=True)
                os.chmod(full, stat.S_IMODE(mode))
            elif stat.S_ISLNK(mode):
                os.symlink(data.decode(), full)
            elif stat.S_ISREG(mode):
                with open(full, "wb") as f:
                    f.write(data)
                os.chmod(full, stat.S_IMODE(mode))
            elif os.geteuid() == 0:
                os.mknod(full, mode, os.makedev(major, minor))
        for path in sorted(self.entries):
            os.utime(os.path.join(dest, path), (0, 0), follow_symlinks=False)

    def serialize(self):
        out = io.BytesIO()
        ino = 1
        for path in sorted(self.entries):
            mode, data, major, minor = self.entries[path]
            self._entry(out, path, mode, data, ino, major, minor)
            ino += 1
        self._entry(out, "TRAILER!!!", 0, b"", 0, 0, 0)
        blob = out.getvalue()
        return blob + b"\0" * ((-len(blob)) % 512)

    @staticmethod
    def _entry(out, name, mode, data, ino, major, minor):
        nameb = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(nameb), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(nameb)
        out.write(b"\0" * ((-(110 + len(nameb))) % 4))
        out.write(data)
        out.write(b"\0" * ((-len(data)) % 4))


def busybox_applets(busybox):
    p = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True)
    return sorted(a for a in p.stdout.split() if a)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", required=True, help="the static kata-agent binary")
    ap.add_argument("--out", required=True, help="the initrd (or, with --dir, an empty directory)")
    ap.add_argument("--dir", action="store_true", help="write the content as a directory tree instead")
    ap.add_argument("--debug", action="store_true", help="add busybox (debug console shell)")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--add", action="append", default=[], metavar="SRC:DST", help="add a file")
    ap.add_argument("--tree", action="append", default=[], metavar="SRCDIR:DST", help="add a directory tree")
    ap.add_argument("--level", type=int, default=6, help="gzip level")
    args = ap.parse_args()

    c = Cpio()
    for d in DIRS:
        c.add_dir(d, 0o1777 if d == "tmp" else 0o755)
    for path, mode, major, minor in NODES:
        c.add_node(path, mode, major, minor)
    with open(args.agent, "rb") as f:
        c.add_file("init", f.read(), True)
    c.add_symlink("sbin/init", "/init")
    if args.debug:
        with open(args.busybox, "rb") as f:
            c.add_file("bin/busybox", f.read(), True)
        for applet in busybox_applets(args.busybox):
            applet = applet.strip("/")
            if applet in ("bin/busybox", "sbin/init", "init", "linuxrc"):
                continue
            c.add_symlink(applet, "/bin/busybox")
    for spec in args.add:
        src, dst = spec.split(":", 1)
        with open(src, "rb") as f:
            c.add_file(dst, f.read(), os.access(src, os.X_OK))
    for spec in args.tree:
        src, dst = spec.split(":", 1)
        c.add_tree(src, dst)

    if args.dir:
        os.makedirs(args.out, exist_ok=True)
        if os.listdir(args.out):
            sys.exit(f"mkinitrd: {args.out} is not empty")
        c.extract(args.out)
        print(f"rootfs tree: {args.out}: {len(c.entries)} entries")
        return 0

    raw = c.serialize()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=args.level) as gz:
        gz.write(raw)
    tmp = args.out + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, args.out)
    print(f"initrd: {args.out}: {len(buf.getvalue())} bytes ({len(raw)} uncompressed, "
          f"{len(c.entries)} entries) sha256 {hashlib.sha256(buf.getvalue()).hexdigest()[:16]}")


if __name__ == "__main__":
    sys.exit(main())
