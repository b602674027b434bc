"""A booted guest and the container calls the cgroup and device VM tests make, through
agent-ctl.

    g = Guest(test, memory_mb=512, disks=[img])        # boots; stopped by test cleanup
    g.create("c1", ["sleep", "1000"], resources={"Memory": {"Limit": 64 << 20}})
    g.start("c1")
    files = g.guest_files(["sandbox/c1/memory.max"])   # read by a short-lived container
    g.remove("c1")

Containers run the test initrd's busybox rootfs; the guest's /usr/bin (the test helpers,
cg-probe among them) is bind-mounted at /guest-bin. guest_files() reads the guest's
/sys/fs/cgroup (bound at /gcg) and /proc (at /gproc) from a container of its own.
"""
import base64
import os
import time
import unittest

from . import INITRD_TEST, RpcError, agent_ctl, katavm, require_guest, require_vsockd

ROOTFS = "/opt/kata-test/busybox"  # inside the test initrd
ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
            "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
            "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
            "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]

MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    {"destination": "/guest-bin", "type": "bind", "source": "/usr/bin", "options": ["bind", "ro"]},
]


class Guest:
    def __init__(self, test, memory_mb=512, cmdline=(), disks=(), extra_qemu=(), cpus=1, max_cpus=4):
        require_guest(INITRD_TEST)
        require_vsockd()
        k = katavm()
        self.test = test
        self.vm = k.VM(initrd=INITRD_TEST, cmdline=["agent.log=debug"] + list(cmdline),
                       memory_mb=memory_mb, disks=list(disks), extra_qemu=list(extra_qemu), cpus=cpus,
                       max_cpus=max_cpus)
        test.addCleanup(self._cleanup)
        self.vm.start()
        self.vm.wait_agent(timeout=180)
        for _ in range(200):
            try:
                self.call("Check", timeout=10)
                break
            except Exception:
                time.sleep(0.2)
        self.readers = 0

    def _cleanup(self):
        if os.environ.get("KATA_TEST_SHOW_CONSOLE"):
            print("---- console (tail) ----\n" + self.console_tail())
        self.vm.stop()

    def console_tail(self, n=6000):
        return self.vm.console_text()[-n:]

    def call(self, method, req=None, timeout=60, check=True):
        return agent_ctl(self.vm.agent_addr(), method, req or {}, timeout=timeout, check=check)

    def check(self, timeout=10):
        return self.call("Check", timeout=timeout)

    # ---- containers ----
    @staticmethod
    def spec(args, resources=None, mounts=(), cgroups_path="", annotations=None, devices=(),
             caps=None, oom_score_adj=0, env=()):
        linux = {"Namespaces": [{"Type": "mount"}, {"Type": "uts"}, {"Type": "ipc"}]}
        if resources:
            linux["Resources"] = resources
        if cgroups_path:
            linux["CgroupsPath"] = cgroups_path
        if devices:
            linux["Devices"] = list(devices)
        proc = {"User": {"UID": 0, "GID": 0}, "Args": list(args), "Cwd": "/",
                "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin:/guest-bin"] + list(env),
                "OOMScoreAdj": oom_score_adj}
        if caps is not None:
            proc["Capabilities"] = {k: list(caps) for k in ("Bounding", "Effective", "Permitted")}
        spec = {"Version": "1.0.2", "Process": proc, "Root": {"Path": ROOTFS, "Readonly": False},
                "Hostname": "cg", "Mounts": MOUNTS + list(mounts), "Linux": linux}
        if annotations:
            spec["Annotations"] = dict(annotations)
        return spec

    def create(self, cid, args, **kw):
        return self.call("CreateContainer", {"container_id": cid, "exec_id": cid,
                                             "OCI": self.spec(args, **kw)})

    def start(self, cid):
        return self.call("StartContainer", {"container_id": cid})

    def wait(self, cid, timeout=300):
        return self.call("WaitProcess", {"container_id": cid, "exec_id": cid},
                         timeout=timeout).get("status", 0)

    def remove(self, cid, timeout_s=20):
        return self.call("RemoveContainer", {"container_id": cid, "timeout": timeout_s}, timeout=60)

    def read(self, cid, timeout=60):
        d = self.call("ReadStdout", {"container_id": cid, "exec_id": cid, "len": 65536},
                      timeout=timeout).get("data", "")
        return base64.b64decode(d).decode(errors="replace")

    def read_until(self, cid, text, timeout=120):
        """Reads stdout until `text` appears (or the stream ends); returns all read."""
        out = ""
        deadline = time.time() + timeout
        while text not in out:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"{cid}: no {text!r} within {timeout} s; got {out!r}")
            try:
                d = self.read(cid, timeout=max(1, int(left)))
            except RpcError as e:
                if e.code == "DEADLINE_EXCEEDED":
                    continue
                raise
            if not d:
                break
            out += d
        return out

    def run(self, cid, args, timeout=300, **kw):
        """Create, start, read all stdout, wait, remove: (exit status, stdout)."""
        self.create(cid, args, **kw)
        try:
            self.start(cid)
            out = ""
            while True:
                d = self.read(cid, timeout=timeout)
                if not d:
                    break
                out += d
            return self.wait(cid, timeout=timeout), out
        finally:
            self.remove(cid)

    def stats(self, cid):
        return self.call("StatsContainer", {"container_id": cid})

    # ---- the guest's files ----
    def guest_files(self, paths):
        """Reads files of the guest's /sys/fs/cgroup (relative paths) or absolute paths
        (/gproc: the guest's /proc; /sys, /proc: the reader's own) from a container of its
        own. Returns {path: content without the trailing newline}; None for a file that
        cannot be read."""
        self.readers += 1
        cid = f"reader-{self.readers}"
        script = ""
        for p in paths:
            full = p if p.startswith("/") else f"/gcg/{p}"
            script += f"echo '@@@ {p}'; cat '{full}' 2>/dev/null || echo '@@@ missing'; "
        mounts = [{"destination": "/gcg", "type": "bind", "source": "/sys/fs/cgroup", "options": ["bind", "ro"]},
                  {"destination": "/gproc", "type": "bind", "source": "/proc", "options": ["bind", "ro"]}]
        status, out = self.run(cid, ["sh", "-c", script], mounts=mounts)
        if status != 0:
            raise RuntimeError(f"reader exited {status}: {out}")
        files, cur, buf = {}, None, []
        for line in out.split("\n"):
            if line.startswith("@@@ "):
                if line == "@@@ missing":
                    files[cur] = None
                    cur = None
                    continue
                if cur is not None:
                    files[cur] = "\n".join(buf).rstrip("\n")
                cur, buf = line[4:], []
            elif cur is not None:
                buf.append(line)
        if cur is not None:
            files[cur] = "\n".join(buf).rstrip("\n")
        return files

    def guest_file(self, path):
        return self.guest_files([path])[path]


def flat(text):
    """'key value' lines -> {key: int}."""
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def skip_unless(cond, why):
    if not cond:
        raise unittest.SkipTest(why)
