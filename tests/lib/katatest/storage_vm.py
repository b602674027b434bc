"""The agent in a VM, driven through agent-ctl, for the storage VM tests.

    g = StorageGuest(vm)                              # after vm.start()
    g.wait_ready()
    g.call("CreateSandbox", {"sandbox_id": "sb"})
    code, out = g.run("c1", ["cat", "/vol/file"], mounts=[bind("/run/x", "/vol")],
                      storages=[{...}])
    text = g.guest_sh("cat /host/proc/1/mountinfo")   # the guest's own view (a probe container
                                                      # with the guest's /proc and /dev)

Requests go to agent-ctl on stdin, so large ones (CopyFile chunks) fit.
"""
import base64
import os
import subprocess
import tempfile
import threading
import time

from . import agent_ctl

ROOTFS = "/opt/kata-test/busybox"  # inside the test initrd


def bind(source, destination, ro=False):
    return {"destination": destination, "type": "bind", "source": source,
            "options": ["rbind", "ro" if ro else "rw"]}


def container_request(cid, args, root=ROOTFS, mounts=(), storages=(), devices=(), linux_devices=(),
                      root_readonly=True, env=None):
    linux = {"Namespaces": [{"Type": "mount"}, {"Type": "uts"}, {"Type": "ipc"}]}
    if linux_devices:
        linux["Devices"] = list(linux_devices)
    return {
        "container_id": cid,
        "exec_id": cid,
        "storages": list(storages),
        "devices": list(devices),
        "OCI": {
            "Version": "1.0.2",
            "Process": {"User": {"UID": 0, "GID": 0}, "Args": list(args), "Cwd": "/",
                        "Env": list(env or ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])},
            "Root": {"Path": root, "Readonly": root_readonly},
            "Hostname": "storage-test",
            "Mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
            ] + list(mounts),
            "Linux": linux,
        },
    }


class StorageGuest:
    def __init__(self, vm):
        self.vm = vm
        self.probes = 0

    def call(self, method, req=None, timeout=60, check=True):
        return agent_ctl(self.vm.agent_addr(), method, req, proto="ttrpc", timeout=timeout, check=check)

    def wait_ready(self, timeout=120):
        self.vm.wait_agent(timeout=timeout)
        for _ in range(100):
            try:
                self.call("Check", timeout=10)
                return
            except Exception:
                time.sleep(0.2)
        raise TimeoutError("the agent does not answer Check")

    def read_all(self, cid):
        out = b""
        while True:
            d = self.call("ReadStdout", {"container_id": cid, "exec_id": cid, "len": 65536}).get("data", "")
            if not d:
                return out.decode(errors="replace")
            out += base64.b64decode(d)

    def create(self, cid, args, **kw):
        return self.call("CreateContainer", container_request(cid, args, **kw), timeout=kw.pop("timeout", 90)
                         if "timeout" in kw else 90)

    def start_and_collect(self, cid):
        """Starts cid and returns (exit status, stdout)."""
        self.call("StartContainer", {"container_id": cid})
        out = self.read_all(cid)
        status = self.call("WaitProcess", {"container_id": cid, "exec_id": cid}).get("status", 0)
        return status, out

    def remove(self, cid):
        return self.call("RemoveContainer", {"container_id": cid, "timeout": 10})

    def run(self, cid, args, remove=True, **kw):
        """Create, start, collect stdout, wait, remove. Returns (status, stdout)."""
        self.call("CreateContainer", container_request(cid, args, **kw), timeout=90)
        try:
            return self.start_and_collect(cid)
        finally:
            if remove:
                self.remove(cid)

    def guest_sh(self, script):
        """Runs script in a probe container that sees the guest's /proc at /host/proc (so
        /host/proc/1/mountinfo is the agent's mount table) and the guest's /dev at
        /host/dev. Returns stdout; fails the test on a non-zero exit."""
        self.probes += 1
        cid = f"probe-{self.probes}"
        status, out = self.run(cid, ["/bin/sh", "-c", script],
                               mounts=[bind("/proc", "/host/proc", ro=True), bind("/dev", "/host/dev", ro=True)])
        if status != 0:
            raise AssertionError(f"probe exited {status}: {script}\n{out}")
        return out

    def guest_mounts(self):
        """{mount point: (fstype, source)} of the agent's mount namespace."""
        out = {}
        for line in self.guest_sh("cat /host/proc/1/mountinfo").splitlines():
            f = line.split()
            if "-" not in f:
                continue
            d = f.index("-")
            out[f[4].replace("\\040", " ")] = (f[d + 1], f[d + 2])
        return out

    def in_thread(self, fn, *args, **kw):
        """Runs fn in a thread; returns a join() that gives its result or raises its error."""
        box = {}

        def body():
            try:
                box["result"] = fn(*args, **kw)
            except BaseException as e:  # handed to join()
                box["error"] = e
        t = threading.Thread(target=body, daemon=True)
        t.start()

        def join(timeout=300):
            t.join(timeout)
            if t.is_alive():
                raise TimeoutError("the call did not return")
            if "error" in box:
                raise box["error"]
            return box.get("result")
        return join


def make_ext4(path, files, size_mb=32, tree=None):
    """An ext4 image at path holding files ({relative path: bytes or str}) and, if given, a
    copy of the directory tree `tree` (at the image's root)."""
    with tempfile.TemporaryDirectory(prefix="kata-img-") as d:
        if tree:
            subprocess.run(["cp", "-a", tree + "/.", d], check=True)
        for rel, content in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", d, path, f"{size_mb}M"],
                       check=True, capture_output=True)
    return path


def debugfs_cat(image, path):
    """A file's content inside an ext4 image, read on the host with debugfs."""
    p = subprocess.run(["debugfs", "-R", f"cat {path}", image], capture_output=True)
    return p.stdout.decode(errors="replace")
