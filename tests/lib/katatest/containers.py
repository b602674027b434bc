"""Containers through the agent's API, for the host and VM tiers.

    rootfs = build_rootfs(os.path.join(tmp, "rootfs"))          # busybox, see rootfs-builder/
    with ContainerClient(agent.sock) as c:
        c.create("c1", make_spec(rootfs, ["sh", "-c", "echo hi"]))
        c.start("c1")
        out = c.read_all("c1")                                  # until end of stream
        self.assertEqual(c.wait("c1"), 0)
        c.remove("c1")

Calls go through Debian's python3-grpcio with the stubs generated at build time (fast
enough for hundreds of containers); errors raise RpcError(code name, message) like
agent-ctl's.
"""
import copy
import os
import subprocess
import threading

from . import RpcError, SRC_DIR, python_grpc_modules

TEST_ROOTFS_SH = os.path.join(SRC_DIR, "rootfs-builder", "test-rootfs.sh")


def build_rootfs(out):
    """The busybox test rootfs (rootfs-builder/test-rootfs.sh) at out."""
    subprocess.run([TEST_ROOTFS_SH, out], check=True, capture_output=True)
    return out


def make_spec(root, args, hostname="", env=None, mounts=None, namespaces=("mount", "uts", "ipc"),
              masked=(), readonly=(), root_readonly=False, cwd="/", extra_linux=None, proc=True):
    """A spec dict (proto field names) as the Kata runtime would send it: no pid namespace."""
    m = []
    if proc:
        m.append({"destination": "/proc", "type": "proc", "source": "proc",
                  "options": ["nosuid", "noexec", "nodev"]})
    m += list(mounts or [])
    linux = {"Namespaces": [{"Type": t} for t in namespaces],
             "MaskedPaths": list(masked), "ReadonlyPaths": list(readonly)}
    linux.update(extra_linux or {})
    return {
        "Process": {"Args": list(args), "Env": list(env or ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"]), "Cwd": cwd},
        "Root": {"Path": root, "Readonly": root_readonly},
        "Hostname": hostname,
        "Mounts": m,
        "Linux": linux,
    }


class ContainerClient:
    def __init__(self, sock_path, timeout=60):
        import grpc
        self.grpc = grpc
        self.pb, agent_grpc, _, _ = python_grpc_modules()
        from google.protobuf import json_format
        self.json_format = json_format
        self.channel = grpc.insecure_channel("unix:" + sock_path)
        self.stub = agent_grpc.AgentServiceStub(self.channel)
        self.timeout = timeout

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, request, timeout=None):
        try:
            return getattr(self.stub, method)(request, timeout=timeout or self.timeout)
        except self.grpc.RpcError as e:
            raise RpcError(e.code().name, e.details()) from None

    def create(self, cid, spec, sandbox_pidns=False, timeout=None):
        req = self.json_format.ParseDict({"container_id": cid, "OCI": copy.deepcopy(spec),
                                          "sandbox_pidns": sandbox_pidns}, self.pb.CreateContainerRequest())
        return self.call("CreateContainer", req, timeout)

    def start(self, cid):
        return self.call("StartContainer", self.pb.StartContainerRequest(container_id=cid))

    def wait(self, cid, exec_id="", timeout=None):
        return self.call("WaitProcess", self.pb.WaitProcessRequest(container_id=cid, exec_id=exec_id),
                         timeout).status

    def signal(self, cid, sig, exec_id=""):
        return self.call("SignalProcess", self.pb.SignalProcessRequest(container_id=cid, exec_id=exec_id,
                                                                       signal=sig))

    def remove(self, cid, timeout_s=0, timeout=None):
        return self.call("RemoveContainer", self.pb.RemoveContainerRequest(container_id=cid, timeout=timeout_s),
                         timeout)

    def read(self, cid, stream="stdout", length=65536, exec_id="", timeout=None):
        method = "ReadStdout" if stream == "stdout" else "ReadStderr"
        return self.call(method, self.pb.ReadStreamRequest(container_id=cid, exec_id=exec_id, len=length),
                         timeout).data

    def read_all(self, cid, stream="stdout", exec_id=""):
        out = bytearray()
        while True:
            d = self.read(cid, stream, exec_id=exec_id)
            if not d:
                return bytes(out)
            out += d

    def write_stdin(self, cid, data, exec_id=""):
        return self.call("WriteStdin", self.pb.WriteStreamRequest(container_id=cid, exec_id=exec_id,
                                                                  data=data)).len

    def close_stdin(self, cid, exec_id=""):
        return self.call("CloseStdin", self.pb.CloseStdinRequest(container_id=cid, exec_id=exec_id))

    def run(self, cid, spec, remove=True):
        """Create, start, collect stdout and stderr (concurrently), wait. Returns
        (exit code, stdout bytes, stderr bytes)."""
        self.create(cid, spec)
        try:
            self.start(cid)
            err = {}
            t = threading.Thread(target=lambda: err.setdefault("data", self.read_all(cid, "stderr")))
            t.start()
            out = self.read_all(cid)
            t.join()
            code = self.wait(cid)
            return code, out, err.get("data", b"")
        finally:
            if remove:
                self.remove(cid)


def children_of(pid):
    """Pids whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append(int(d))
    return out


def mount_count():
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)
