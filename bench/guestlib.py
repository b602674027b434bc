"""What the in-guest benchmarks share: booting the guest under QEMU (tools/katavm.py), a
small ttrpc client over hybrid vsock (the protocol the Kata runtime speaks; no relay on the
host, so a figure is the agent's and the transport's, not a proxy's), containers of the test
initrd's busybox rootfs, and the debug console as a way to read the guest's /proc.

    with GuestAgent(initrd=INITRD_TEST, cmdline=[...]) as g:
        g.create("c1", ["sleep", "1000"]); g.start("c1")
        text = g.shell("cat /proc/1/smaps_rollup")      # needs agent.debug_console_vport
"""
import copy
import glob
import os
import re
import struct
import sys
import time

from benchlib import BUILD_DIR

import katavm  # noqa: E402  (tools/, on sys.path through benchlib)
from katatest import hvsock  # noqa: E402

GUEST_DIR = os.path.join(BUILD_DIR, "guest")
KERNEL = os.path.join(GUEST_DIR, "vmlinuz")
INITRD = os.path.join(GUEST_DIR, "initrd.img")
INITRD_TEST = os.path.join(GUEST_DIR, "initrd-test.img")
ROOTFS = "/opt/kata-test/busybox"  # inside the test initrd
STOCK_KERNEL_DIR = os.path.expanduser("~/.cache/kata-agent/stock-kernel")
CONSOLE_PORT = 1026
AGENT_SERVICE = "grpc.AgentService"


def stock_kernel():
    """Debian's stock 6.1 kernel, extracted (never installed) by bench/fetch-stock-kernel.sh;
    None when it is not there."""
    found = sorted(glob.glob(os.path.join(STOCK_KERNEL_DIR, "root", "boot", "vmlinuz-6.1*")))
    return found[-1] if found else None


def missing(*paths):
    """The first of paths that does not exist (None when all do)."""
    for p in paths:
        if not os.path.exists(p):
            return p
    return None


def proto():
    """The Python protobuf modules generated at build time (agent, health, ttrpc)."""
    d = os.path.join(BUILD_DIR, "python")
    if d not in sys.path:
        sys.path.insert(0, d)
    import agent_pb2
    import health_pb2
    import ttrpc_pb2
    from google.protobuf import json_format
    return agent_pb2, health_pb2, ttrpc_pb2, json_format


class RpcFailed(RuntimeError):
    pass


class Ttrpc:
    """One ttrpc connection, one call at a time (stream ids 1, 3, 5, ...)."""

    def __init__(self, sock):
        self.s = sock
        self.sid = 1
        self.buf = bytearray()
        _, _, self.tpb, _ = proto()

    @classmethod
    def hvsock(cls, uds, port=katavm.AGENT_PORT, timeout=60):
        s, _ = hvsock.hv_connect(uds, port, timeout)
        s.settimeout(timeout)
        return cls(s)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the agent closed the ttrpc connection")
            self.buf += chunk

    def call(self, method, request, response_cls, service=AGENT_SERVICE, timeout_s=60):
        body = self.tpb.Request(service=service, method=method, payload=request.SerializeToString(),
                                timeout_nano=int(timeout_s * 1e9)).SerializeToString()
        sid = self.sid
        self.sid += 2
        self.s.sendall(struct.pack(">IIBB", len(body), sid, 1, 0) + body)
        while True:
            self._fill(10)
            length, rsid, typ, _ = struct.unpack(">IIBB", self.buf[:10])
            self._fill(10 + length)
            frame = bytes(self.buf[10:10 + length])
            del self.buf[:10 + length]
            if typ == 2 and rsid == sid:
                break
        r = self.tpb.Response()
        r.ParseFromString(frame)
        if r.status.code != 0:
            raise RpcFailed(f"{method}: code {r.status.code}: {r.status.message}")
        out = response_cls()
        out.ParseFromString(r.payload)
        return out

    def close(self):
        self.s.close()


def busybox_spec(args, mounts=(), namespaces=("mount", "uts", "ipc")):
    """An OCI spec (proto JSON names) of the busybox rootfs running args, as the Kata runtime
    would send it (no pid namespace: the agent gives one)."""
    return {
        "Process": {"Args": list(args), "Env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"], "Cwd": "/",
                    "User": {"UID": 0, "GID": 0}},
        "Root": {"Path": ROOTFS, "Readonly": False},
        "Hostname": "bench",
        "Mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"]}] + list(mounts),
        "Linux": {"Namespaces": [{"Type": t} for t in namespaces]},
    }


class GuestAgent:
    """A booted guest with the agent as PID 1, reached over ttrpc through vsockd."""

    def __init__(self, initrd=INITRD_TEST, kernel=None, cmdline=(), memory_mb=512, log="info"):
        self.vm = katavm.VM(kernel=kernel, initrd=initrd, cmdline=[f"agent.log={log}"] + list(cmdline),
                            memory_mb=memory_mb)
        self.pb, self.hpb, _, self.jf = proto()
        self.conn = None

    def __enter__(self):
        try:
            self.vm.start()
            self.listening = self.vm.wait_agent(timeout=180)
            self.conn = self.connect(timeout=120)
            return self
        except BaseException:
            self.vm.__exit__(*sys.exc_info())
            raise

    def __exit__(self, *exc):
        if self.conn:
            self.conn.close()
        self.vm.__exit__(*exc)

    def connect(self, timeout=60):
        """A new ttrpc connection whose first Check has been answered."""
        deadline = time.time() + timeout
        while True:
            try:
                c = Ttrpc.hvsock(self.vm.vsock_uds)
                c.call("Check", self.hpb.CheckRequest(), self.hpb.HealthCheckResponse, service="grpc.Health")
                return c
            except (hvsock.Refused, ConnectionError, OSError):
                if time.time() > deadline:
                    raise
                time.sleep(0.02)

    def call(self, method, req, resp, timeout_s=120):
        return self.conn.call(method, req, resp, timeout_s=timeout_s)

    # ---- containers ----
    def create(self, cid, args, mounts=()):
        req = self.jf.ParseDict({"container_id": cid, "exec_id": cid,
                                 "OCI": copy.deepcopy(busybox_spec(args, mounts))},
                                self.pb.CreateContainerRequest())
        from google.protobuf import empty_pb2
        self.call("CreateContainer", req, empty_pb2.Empty)

    def start(self, cid):
        from google.protobuf import empty_pb2
        self.call("StartContainer", self.pb.StartContainerRequest(container_id=cid), empty_pb2.Empty)

    def wait(self, cid):
        return self.call("WaitProcess", self.pb.WaitProcessRequest(container_id=cid, exec_id=cid),
                         self.pb.WaitProcessResponse).status

    def remove(self, cid):
        from google.protobuf import empty_pb2
        self.call("RemoveContainer", self.pb.RemoveContainerRequest(container_id=cid, timeout=10), empty_pb2.Empty)

    # ---- the guest's shell (agent.debug_console_vport) ----
    def shell(self, command, timeout=60):
        """Runs a command in a debug-console shell (a pty in the guest) and returns its
        output. The markers are computed by the shell, so the echoed input never matches."""
        s, _ = hvsock.hv_connect(self.vm.vsock_uds, CONSOLE_PORT, timeout)
        with s:
            s.settimeout(timeout)
            s.sendall(f"stty -echo; echo B$((6*7)); {command}; echo E$((6*8))\n".encode())
            out = b""
            deadline = time.time() + timeout
            while not re.search(rb"B42\r?\n(.*?)E48\r?\n", out, re.S):
                if time.time() > deadline:
                    raise TimeoutError(f"debug console: no answer to {command!r}: {out[-500:]!r}")
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            s.sendall(b"exit\n")
        m = re.search(rb"B42\r?\n(.*?)E48\r?\n", out, re.S)
        if not m:
            raise RuntimeError(f"debug console: no answer to {command!r}: {out[-500:]!r}")
        return m.group(1).decode(errors="replace").replace("\r\n", "\n")


def proc_kb(text, field):
    """A 'Field:   123 kB' value from /proc status or smaps_rollup text."""
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None
