"""The agent's containers against crun's, in one VM, from the same config.json.

The VM boots initrd-crun.img (make initrd-crun; built here when missing): the agent, and at
/opt/kata-test/crun a busybox rootfs that also carries crun 1.8.1 with its shared libraries
and sec-probe (tests/vm/guest/sec-probe.c), which prints a process's ids, groups,
capability sets, no_new_privs, seccomp mode, rlimits, oom_score_adj, hostname, namespaces
and mounts.

How crun runs in the guest: through the agent itself. A privileged "driver" container
(root with every capability, no seccomp, no masked paths; the guest's /sys/fs/cgroup bound
in) has the crun tree as its rootfs, a tmpfs /bundle with the same tree bound at
/bundle/rootfs, and runs `sh -c 'cat > /bundle/config.json; exec crun run'`: the test
writes the config.json through WriteStdin, and crun's container (the probe) writes through
the driver's stdout. crun's cgroup manager is disabled (cgroups are not what is compared).
The agent then runs the same config.json (converted to the agent API's Spec, root.path
the tree itself) and the two outputs are compared line by line.

Allowed differences (each checked to be exactly what is expected, not ignored):
  - namespace inodes: every new namespace has a fresh inode, so each ns link is compared
    as "the guest's" or "new" (the guest's taken from a container sharing all but mount
    and pid);
  - mounts: compared as the set of mount points. crun's mount namespace is a copy of the
    driver container's, so crun's list also shows the driver's /bundle and /sys/fs/cgroup
    and, stacked under the container's, the driver's /dev, /proc and /sys; their options
    (and those of crun's binds of /proc paths, which inherit the driver's /proc flags) do
    not describe crun itself.
"""
import copy
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest.vmclient import GuestAgentClient  # noqa: E402

INITRD_CRUN = os.path.join(katatest.GUEST_DIR, "initrd-crun.img")
TREE = "/opt/kata-test/crun"  # in the guest
PROBE = os.path.join(katatest.BIN, "sec-probe")
RUN_TIMED = os.path.join(katatest.BIN, "run-timed")  # for bench/exec_vs_crun.py, when built

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
                "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"]
DENIED_ERRNO = 121
# Mount points of the driver container that crun's container sees (see compare()).
DRIVER_MOUNTS = {"/bundle", "/sys/fs/cgroup"}


def ensure_crun_initrd():
    """Builds build/guest/initrd-crun.img when it is missing or older than its inputs."""
    agent = katatest.AGENT
    for p in (agent, PROBE):
        if not os.path.exists(p):
            raise unittest.SkipTest(f"{p} is missing: build first")
    if not os.path.exists("/usr/bin/crun"):
        raise unittest.SkipTest("crun is not installed on the host (apt-get install crun)")
    helpers = [PROBE] + ([RUN_TIMED] if os.path.exists(RUN_TIMED) else [])
    inputs = helpers + [agent, os.path.join(katatest.SRC_DIR, "rootfs-builder", "crun-rootfs.sh")]
    if os.path.exists(INITRD_CRUN) and all(os.path.getmtime(INITRD_CRUN) >= os.path.getmtime(i) for i in inputs):
        return
    tree = os.path.join(katatest.GUEST_DIR, "crun-rootfs")
    subprocess.run(["rm", "-rf", tree], check=True)
    subprocess.run([os.path.join(katatest.SRC_DIR, "rootfs-builder", "crun-rootfs.sh"), tree] + helpers,
                   check=True, capture_output=True)
    subprocess.run([os.path.join(katatest.SRC_DIR, "initrd", "mkinitrd.py"), "--agent", agent, "--debug",
                    "--out", INITRD_CRUN, "--tree", f"{tree}:{TREE}"], check=True, capture_output=True)


def probe_config(root, uid=0, gid=0, groups=(), nnp=True, caps=None, oom=0, hostname="probe"):
    """A runc-style config.json (the OCI JSON spelling) running sec-probe."""
    caps = caps or {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS,
                    "inheritable": [], "ambient": []}
    cfg = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": list(groups)},
            "args": ["/bin/sec-probe"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
                        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
                        {"type": "RLIMIT_NPROC", "hard": 2000, "soft": 1000}],
            "noNewPrivileges": nnp,
        },
        "root": {"path": root, "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                            "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED_ERRNO},
                    {"names": ["kexec_load", "no_such_syscall_2077"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 0xffffffff, "op": "SCMP_CMP_EQ"}]},
                ],
            },
        },
    }
    if oom:
        cfg["process"]["oomScoreAdj"] = oom
    return cfg


def to_agent_spec(cfg):
    """config.json (OCI JSON) -> the agent API's Spec, as JSON for json_format."""
    p = cfg["process"]
    u = p.get("user", {})
    proc = {"Terminal": p.get("terminal", False),
            "User": {"UID": u.get("uid", 0), "GID": u.get("gid", 0), "AdditionalGids": u.get("additionalGids", [])},
            "Args": p["args"], "Env": p.get("env", []), "Cwd": p.get("cwd", "/"),
            "NoNewPrivileges": p.get("noNewPrivileges", False),
            "Rlimits": [{"Type": r["type"], "Hard": r["hard"], "Soft": r["soft"]} for r in p.get("rlimits", [])],
            "OOMScoreAdj": p.get("oomScoreAdj", 0)}
    if "capabilities" in p:
        proc["Capabilities"] = {k.capitalize(): v for k, v in p["capabilities"].items()}
    lx = cfg.get("linux", {})
    linux = {"Namespaces": [{"Type": n["type"], "Path": n.get("path", "")} for n in lx.get("namespaces", [])],
             "MaskedPaths": lx.get("maskedPaths", []), "ReadonlyPaths": lx.get("readonlyPaths", [])}
    if "seccomp" in lx:
        s = lx["seccomp"]
        calls = []
        for c in s.get("syscalls", []):
            call = {"Names": c["names"], "Action": c["action"],
                    "Args": [{"Index": a["index"], "Value": a.get("value", 0), "ValueTwo": a.get("valueTwo", 0),
                              "Op": a["op"]} for a in c.get("args", [])]}
            if "errnoRet" in c:
                call["errnoret"] = c["errnoRet"]
            calls.append(call)
        linux["Seccomp"] = {"DefaultAction": s["defaultAction"], "Architectures": s.get("architectures", []),
                            "Flags": s.get("flags", []), "Syscalls": calls}
    return {"Version": cfg.get("ociVersion", ""), "Process": proc,
            "Root": {"Path": cfg["root"]["path"], "Readonly": cfg["root"].get("readonly", False)},
            "Hostname": cfg.get("hostname", ""), "Mounts": cfg.get("mounts", []), "Linux": linux}


def driver_spec(script):
    """The privileged container crun runs in."""
    return {
        "Process": {"Args": ["/bin/sh", "-c", script], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cwd": "/",
                    "User": {"UID": 0, "GID": 0}},
        "Root": {"Path": TREE},
        "Mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": []},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []},
            {"destination": "/sys/fs/cgroup", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind"]},
            {"destination": "/bundle", "type": "tmpfs", "source": "tmpfs", "options": []},
            {"destination": "/bundle/rootfs", "type": "bind", "source": TREE, "options": ["rbind"]},
        ],
        "Linux": {"Namespaces": [{"Type": "mount"}]},
    }


def parse(out):
    lines = {}
    mounts = []
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "mount":
            mounts.append(value)
        elif key in ("rlimit", "ns", "syscall"):
            k2, _, v2 = value.partition(" ")
            lines[f"{key} {k2}"] = v2
        else:
            lines[key] = value
    return lines, sorted(mounts)


class SecurityVsCrun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.KERNEL)  # the initrd is built here
        katatest.require_vsockd()
        ensure_crun_initrd()
        cls.vm = katatest.katavm().VM(initrd=INITRD_CRUN, cmdline=["agent.log=debug"], memory_mb=1024)
        cls.vm.__enter__()
        try:
            cls.vm.wait_agent(timeout=180)
            cls.c = GuestAgentClient(cls.vm)
            cls.guest_ns = cls.guest_namespaces()
        except BaseException:
            cls.vm.__exit__(*sys.exc_info())
            raise
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.vm.__exit__(None, None, None)

    @classmethod
    def guest_namespaces(cls):
        spec = driver_spec("for n in cgroup ipc net time user uts; do echo $n $(readlink /proc/self/ns/$n); done")
        code, out, err = cls.c.run("guest-ns", spec)
        assert code == 0, err
        return dict(l.split(" ", 1) for l in out.decode().splitlines())

    def next_id(self, name):
        type(self).n += 1
        return f"{name}-{self.n}"

    def run_under_crun(self, cfg):
        cid = self.next_id("crun")
        cfg = copy.deepcopy(cfg)
        cfg["root"]["path"] = "/bundle/rootfs"
        self.c.create(cid, driver_spec(
            f"cat > /bundle/config.json && exec crun --root /run/crun --cgroup-manager=disabled run "
            f"--bundle /bundle probe-{cid}"))
        try:
            self.c.start(cid)
            self.c.write_stdin(cid, json.dumps(cfg).encode())
            self.c.close_stdin(cid)
            out = self.c.read_all(cid).decode(errors="replace")
            err = self.c.read_all(cid, "stderr").decode(errors="replace")
            code = self.c.wait(cid)
        finally:
            self.c.remove(cid)
        self.assertEqual(code, 0, f"crun failed: {err}\n{out}")
        return out

    def run_under_agent(self, cfg):
        code, out, err = self.c.run(self.next_id("agent"), to_agent_spec(cfg))
        self.assertEqual(code, 0, err)
        return out.decode(errors="replace")

    def classify_ns(self, lines):
        for k in list(lines):
            if k.startswith("ns "):
                name = k[3:].replace("_for_children", "")
                base = self.guest_ns.get(name)
                lines[k] = "guest" if base and lines[k] == base else "new"

    def compare(self, cfg):
        crun_out = self.run_under_crun(cfg)
        agent_out = self.run_under_agent(cfg)
        crun_lines, crun_mounts = parse(crun_out)
        agent_lines, agent_mounts = parse(agent_out)
        self.classify_ns(crun_lines)
        self.classify_ns(agent_lines)
        diffs = [f"{k}: crun {crun_lines.get(k)!r} agent {agent_lines.get(k)!r}"
                 for k in sorted(set(crun_lines) | set(agent_lines)) if crun_lines.get(k) != agent_lines.get(k)]
        self.assertEqual(diffs, [], "\n--- crun\n" + crun_out + "\n--- agent\n" + agent_out)
        # Mount points, each once: crun's mount namespace is a copy of the driver's, so its
        # list also holds the driver's own mounts (listed in DRIVER_MOUNTS) and the driver's
        # /dev, /proc, /sys under the container's; options are not compared for the same
        # reason (crun's binds of /proc paths inherit the driver's /proc flags).
        points = lambda ms: sorted({m.split()[0] for m in ms} - DRIVER_MOUNTS)  # noqa: E731
        self.assertEqual(points(agent_mounts), points(crun_mounts))
        return agent_lines

    def test_root_no_new_privs_default_caps(self):
        lines = self.compare(probe_config(TREE))
        # And the values themselves, not only their equality.
        self.assertEqual(lines["NoNewPrivs"], "1")
        self.assertEqual(lines["Seccomp"], "2")
        self.assertEqual(lines["syscall mkdir"], f"errno {DENIED_ERRNO}")
        self.assertEqual(lines["CapEff"], lines["CapBnd"])
        self.assertEqual(lines["rlimit RLIMIT_NOFILE"], "1024 4096")
        self.assertEqual(lines["hostname"], "probe")
        for ns in ("pid", "net", "ipc", "uts", "mnt"):
            self.assertEqual(lines[f"ns {ns}"], "new", ns)
        for ns in ("user", "cgroup", "time"):
            self.assertEqual(lines[f"ns {ns}"], "guest", ns)

    def test_uid_1000_without_no_new_privs(self):
        caps = {"bounding": DEFAULT_CAPS, "effective": ["CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_NET_BIND_SERVICE"]}
        lines = self.compare(probe_config(TREE, uid=1000, gid=1000, groups=(10, 44), nnp=False, caps=caps,
                                          oom=100, hostname="k8s"))
        self.assertEqual(lines["uid"], "1000 1000 1000")
        self.assertEqual(lines["groups"], "10,44")
        self.assertEqual(lines["NoNewPrivs"], "0")
        self.assertEqual(lines["Seccomp"], "2")
        self.assertEqual(lines["syscall mkdir"], f"errno {DENIED_ERRNO}")
        self.assertEqual(lines["CapAmb"], "0000000000000400")
        self.assertEqual(lines["oom_score_adj"], "100")
        self.assertEqual(lines["HOME"], "/home/user")


if __name__ == "__main__":
    unittest.main(verbosity=2)
