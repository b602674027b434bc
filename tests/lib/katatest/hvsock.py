"""Host-side helpers for the vsock backend's VM tests and benchmark: the hybrid vsock
handshake, the vsock test initrd (busybox + vsock-echo listeners, see
tests/vm/guest/vsock-init.sh) and a VM booted with it."""
import os
import socket
import subprocess
import tempfile
import time
import unittest

from . import BIN, SRC_DIR, KERNEL, katavm

VSOCK_ECHO = os.path.join(BIN, "vsock-echo")
VSOCKD = os.path.join(BIN, "vsockd")
INIT_SCRIPT = os.path.join(SRC_DIR, "tests", "vm", "guest", "vsock-init.sh")
MKINITRD = os.path.join(SRC_DIR, "initrd", "mkinitrd.py")

PORT_ECHO, PORT_SINK, PORT_SOURCE, PORT_DIAL, PORT_COUNT, PORT_BLAST = 5000, 5001, 5002, 5003, 5004, 5005


class Refused(ConnectionError):
    """The backend closed the connection without "OK": the guest refused or did not answer."""


def hv_connect(uds, port, timeout=30):
    """Connects through the hybrid vsock socket; returns (socket, host port). Reads the OK
    line byte by byte, so nothing after it is consumed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(uds)
        s.sendall(f"CONNECT {port}\n".encode())
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                raise Refused(f"guest port {port}: closed without OK")
            line += c
        if not line.startswith(b"OK "):
            raise ConnectionError(f"guest port {port}: unexpected reply {line!r}")
        return s, int(line.split()[1])
    except BaseException:
        s.close()
        raise


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise ConnectionError(f"end of stream after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_all(s):
    parts = []
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def require_echo_guest():
    for p, what in ((KERNEL, "the guest kernel (make guest)"), (VSOCKD, "vsockd"),
                    (VSOCK_ECHO, "vsock-echo")):
        if not os.path.exists(p):
            raise unittest.SkipTest(f"{p} is missing: {what} is not built")


def build_echo_initrd(out):
    """The vsock test initrd: the production layout (mkinitrd) plus busybox, vsock-echo and
    the init script that starts the listeners (booted with rdinit=/usr/bin/vsock-init)."""
    agent = os.path.join(BIN, "kata-agent")
    if not os.path.exists(agent):
        agent = VSOCK_ECHO  # /init is never run here (rdinit= names the script)
    subprocess.run([MKINITRD, "--agent", agent, "--debug", "--out", out,
                    "--add", f"{VSOCK_ECHO}:/usr/bin/vsock-echo",
                    "--add", f"{INIT_SCRIPT}:/usr/bin/vsock-init"],
                   check=True, capture_output=True)
    return out


class EchoVM:
    """A VM whose guest runs the vsock-echo listeners, with vsockd (optionally with extra
    arguments, through a wrapper) as its vsock device. Use as a context manager."""

    def __init__(self, vsockd_args=(), extra_qemu=(), memory_mb=512):
        self.tmp = tempfile.mkdtemp(prefix="kata-vsock-")
        self.initrd = build_echo_initrd(os.path.join(self.tmp, "initrd.img"))
        vsockd = VSOCKD
        if vsockd_args:
            vsockd = os.path.join(self.tmp, "vsockd")
            with open(vsockd, "w") as f:
                f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (VSOCKD, " ".join(vsockd_args)))
            os.chmod(vsockd, 0o755)
        k = katavm()
        self.vm = k.VM(initrd=self.initrd, cmdline=["rdinit=/usr/bin/vsock-init"],
                       workdir=os.path.join(self.tmp, "vm"), vsockd=vsockd,
                       extra_qemu=list(extra_qemu), memory_mb=memory_mb)

    @property
    def uds(self):
        return self.vm.vsock_uds

    def wait_ready(self, timeout=120, start=0):
        for port in (PORT_ECHO, PORT_SINK, PORT_SOURCE, PORT_DIAL, PORT_COUNT, PORT_BLAST):
            self.vm.wait_console(rf"vsock-echo: listening on port {port} ", timeout, start)

    def connect(self, port, timeout=60):
        return hv_connect(self.uds, port, timeout)

    def vsockd_pid(self):
        return self.vm.procs["vsockd"].pid

    def vsockd_alive(self):
        return self.vm.procs["vsockd"].poll() is None

    def __enter__(self):
        try:
            self.vm.__enter__()
            self.wait_ready()
            return self
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        try:
            self.vm.__exit__(*exc)
        finally:
            self.close()

    def close(self):
        try:
            self.vm.stop()
        finally:
            import shutil
            shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout} s")
