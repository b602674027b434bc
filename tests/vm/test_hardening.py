"""The agent's hardening, checked in the guest with the agent as PID 1:

- every fd the agent holds is close-on-exec (/proc/1/fdinfo read from a container given the
  guest's /proc), while containers, their stdio and an exec are alive;
- the agent ignores SIGPIPE, its containers' processes do not inherit that;
- nothing of the agent's is visible inside a container or an exec: no fd beyond stdio, no
  socket, no mount of the agent's (/run), no agent process in /proc;
- a process joining a container (an exec during its set-up) cannot be ptraced, nor its
  /proc/PID/mem opened, by a container process holding CAP_SYS_PTRACE in the container's
  user namespace, which can ptrace the container's other processes;
- a policy given at boot (agent.policy=) refuses a denied exec while an allowed one runs;
  a policy path that cannot be read stops the agent and powers the VM off cleanly.

Runs on the test initrd (busybox rootfs, the guest's /usr/bin at /guest-bin)."""
import base64
import os
import re
import sys
import threading
import time
import types
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import INITRD_TEST, RpcError  # noqa: E402
from katatest.cgroup_guest import ALL_CAPS, Guest  # noqa: E402

O_CLOEXEC = 0o2000000
SIGPIPE_BIT = 1 << (13 - 1)
ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin:/guest-bin"]
GPROC = {"destination": "/gproc", "type": "bind", "source": "/proc", "options": ["rbind", "ro"]}
USERNS_MAPS = {"UIDMappings": [{"ContainerID": 0, "HostID": 100000, "Size": 65536}],
               "GIDMappings": [{"ContainerID": 0, "HostID": 100000, "Size": 65536}]}


def b64(s):
    return base64.b64decode(s or "").decode(errors="replace")


class GuestExec:
    """Exec helpers over agent-ctl for a Guest."""

    def __init__(self, g):
        self.g = g

    def start(self, cid, eid, args):
        self.g.call("ExecProcess", {"container_id": cid, "exec_id": eid,
                                    "process": {"Args": list(args), "Env": ENV, "Cwd": "/"}})

    def finish(self, cid, eid, timeout=120):
        """Reads stdout and stderr to their end, waits: (status, stdout, stderr)."""
        out = {}
        for stream in ("ReadStdout", "ReadStderr"):
            data = ""
            while True:
                d = b64(self.g.call(stream, {"container_id": cid, "exec_id": eid, "len": 65536},
                                    timeout=timeout).get("data"))
                if not d:
                    break
                data += d
            out[stream] = data
        st = self.g.call("WaitProcess", {"container_id": cid, "exec_id": eid}, timeout=timeout).get("status", 0)
        return st, out["ReadStdout"], out["ReadStderr"]

    def run(self, cid, eid, args):
        self.start(cid, eid, args)
        return self.finish(cid, eid)


def visibility_script():
    return ("ls -l /proc/self/fd; echo @@; cat /proc/self/mountinfo; echo @@; "
            "for p in /proc/[0-9]*; do echo \"${p#/proc/} $(tr '\\0' ' ' < $p/cmdline)\"; done; "
            "echo @@")


class Hardening(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_guest(INITRD_TEST)
        cls.g = Guest(types.SimpleNamespace(addCleanup=cls.addClassCleanup), cpus=2)
        cls.x = GuestExec(cls.g)
        # A container and an exec that stay alive: their streams are among the agent's fds.
        cls.g.create("idle", ["sleep", "1000"])
        cls.g.start("idle")
        cls.x.start("idle", "idle-exec", ["sleep", "1000"])

    def agent_fds(self):
        spec_mounts = [GPROC]
        # An fd the agent closes while the loop runs (a finished call's) has no fdinfo by
        # the time sed reads it, and its number may already name a new fd for readlink:
        # such a line says "gone" and is left out.
        script = ("cd /gproc/1/fdinfo && for f in *; do "
                  "fl=$(sed -n 's/^flags:[[:space:]]*//p' $f 2>/dev/null); "
                  "if [ -z \"$fl\" ]; then echo \"gone $f\"; continue; fi; "
                  "echo \"$f $fl $(readlink /gproc/1/fd/$f)\"; done; "
                  "echo SigIgn $(sed -n 's/^SigIgn:[[:space:]]*//p' /gproc/1/status)")
        st, out = self.g.run("fdreader", ["sh", "-c", script], mounts=spec_mounts, caps=ALL_CAPS)
        self.assertEqual(st, 0, out)
        fds, sigign = {}, None
        for line in out.splitlines():
            w = line.split()
            if w[0] == "SigIgn":
                sigign = int(w[1], 16)
            elif len(w) >= 2 and w[0].isdigit():
                fds[int(w[0])] = (int(w[1], 8), w[2] if len(w) > 2 else "")
        return fds, sigign

    def test_every_agent_fd_is_close_on_exec_and_sigpipe_is_ignored(self):
        fds, sigign = self.agent_fds()
        targets = [t for _, t in fds.values()]
        # What must be there: the sealed self image, sockets (listener, connections, netlink),
        # and the pipes of the live container and exec.
        self.assertTrue(any(t.startswith("/memfd:") for t in targets), targets)
        self.assertGreaterEqual(sum(t.startswith("socket:") for t in targets), 2, targets)
        self.assertGreaterEqual(sum(t.startswith("pipe:") for t in targets), 4, targets)
        # 0-2 are the console, which the agent's helpers inherit on purpose; containers and
        # execs get their own stdio (checked below).
        leaking = {fd: (oct(flags), t) for fd, (flags, t) in fds.items() if fd > 2 and not flags & O_CLOEXEC}
        self.assertEqual(leaking, {}, f"agent fds without O_CLOEXEC (of {len(fds)})")
        self.assertTrue(sigign & SIGPIPE_BIT, f"SigIgn {sigign:#x}")

    def check_nothing_of_the_agent(self, out, what):
        fds_part, mounts_part, procs_part, _ = out.split("@@\n")
        fds = {}
        for line in fds_part.splitlines():
            m = re.search(r" (\d+) -> (.*)$", line)
            if m:
                fds[int(m.group(1))] = m.group(2)
        # ls's own directory fd aside: stdio only, pipes, no socket of the agent's.
        extra = {fd: t for fd, t in fds.items() if fd > 2 and not re.match(r"/proc/\d+/fd$", t)}
        self.assertEqual(extra, {}, f"{what}: fds beyond stdio: {fds}")
        for fd in (0, 1, 2):
            self.assertRegex(fds.get(fd, ""), r"^(pipe:\[\d+\]|/dev/null)$", f"{what}: {fds}")
        points = [line.split()[4] for line in mounts_part.splitlines() if len(line.split()) > 4]
        self.assertIn("/", points)
        allowed = ("/proc", "/dev", "/sys", "/tmp", "/guest-bin")
        for p in points:
            self.assertTrue(p == "/" or any(p == a or p.startswith(a + "/") for a in allowed),
                            f"{what}: mount point {p} is not the container's: {points}")
        for line in procs_part.splitlines():
            pid, _, cmd = line.partition(" ")
            self.assertFalse(cmd.startswith("kata-agent"), f"{what}: agent process visible: {line}")

    @staticmethod
    def signal_masks(status_text):
        kv = dict(l.split(":", 1) for l in status_text.splitlines() if ":" in l)
        return {k: int(kv[k].strip(), 16) for k in ("SigIgn", "SigBlk")}

    def test_containers_do_not_inherit_the_agents_signal_settings(self):
        # cat run directly (a shell ignores SIGQUIT itself).
        st, out = self.g.run("sigs", ["cat", "/proc/self/status"])
        self.assertEqual(st, 0, out)
        self.assertEqual(self.signal_masks(out), {"SigIgn": 0, "SigBlk": 0}, "container")
        st, out, err = self.x.run("idle", "sigs-exec", ["cat", "/proc/self/status"])
        self.assertEqual(st, 0, err)
        self.assertEqual(self.signal_masks(out), {"SigIgn": 0, "SigBlk": 0}, "exec")

    def test_nothing_of_the_agent_is_visible_in_a_container(self):
        st, out = self.g.run("look", ["sh", "-c", visibility_script()])
        self.assertEqual(st, 0, out)
        self.check_nothing_of_the_agent(out, "container")
        self.assertIn("\n1 sh -c ", "\n" + out.split("@@\n")[2])  # its own init is pid 1

    def test_nothing_of_the_agent_is_visible_in_an_exec(self):
        st, out, err = self.x.run("idle", "look-exec", ["sh", "-c", visibility_script()])
        self.assertEqual(st, 0, err)
        self.check_nothing_of_the_agent(out, "exec")

    def test_joining_processes_cannot_be_ptraced(self):
        probe_s = 40
        spec = Guest.spec(["sleep", "1000"], caps=ALL_CAPS)
        spec["Linux"]["Namespaces"] = [{"Type": t} for t in ("user", "mount", "uts", "ipc", "pid", "network")]
        spec["Linux"].update(USERNS_MAPS)
        self.g.call("CreateContainer", {"container_id": "victim", "exec_id": "victim", "OCI": spec})
        self.addCleanup(self.g.remove, "victim")
        self.g.start("victim")
        self.x.start("victim", "probe", ["/guest-bin/ptrace-probe", str(probe_s)])
        # Joiners: execs of /bin/true for as long as the probe watches.
        n = 0
        deadline = time.time() + probe_s - 8
        while time.time() < deadline:
            n += 1
            st, _, err = self.x.run("victim", f"j{n}", ["/bin/true"])
            self.assertEqual(st, 0, err)
        st, out, err = self.x.finish("victim", "probe", timeout=probe_s + 60)
        self.assertEqual(st, 0, err)
        r = {k: int(v) for k, v in (w.split("=") for w in out.split())}
        print(f"\n  {n} execs joined the container; probe: {out.strip()}", file=sys.stderr)
        # The probe works: it ptraced the container's other processes...
        self.assertGreaterEqual(r["others_attached"], 1, out)
        # ...it saw processes joining, and could touch none of them before their exec.
        self.assertGreaterEqual(r["joiners"], 1, f"no joiner seen in {n} execs: {out}")
        self.assertEqual(r["joiner_attached"], 0, out)
        self.assertEqual(r["joiner_mem_opened"], 0, out)
        self.assertGreaterEqual(r["joiner_eperm"], 1, out)


class PolicyAtBoot(unittest.TestCase):
    def test_denied_exec_refused_allowed_exec_runs(self):
        g = Guest(self, cmdline=["agent.policy=/etc/kata-test/policy.json"])
        self.assertIn("policy in force", g.console_tail(200000))
        x = GuestExec(g)
        g.create("pol", ["sleep", "1000"])
        g.start("pol")
        st, out, _ = x.run("pol", "ok", ["echo", "allowed"])
        self.assertEqual((st, out), (0, "allowed\n"))
        with self.assertRaises(RpcError) as e:
            x.start("pol", "bad", ["sh", "-c", "echo denied"])
        self.assertEqual(e.exception.code, "PERMISSION_DENIED")
        self.assertIn('["sh", "-c", "echo denied"]', e.exception.message)
        with self.assertRaises(RpcError) as e:
            g.call("SetPolicy", {"policy": '{"version": 1}'})
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        self.assertIn("agent.policy=/etc/kata-test/policy.json", e.exception.message)
        g.remove("pol")
        self.assertIn("policy denied a call", g.console_tail(200000))

    def test_unreadable_policy_powers_off(self):
        katatest.require_guest(INITRD_TEST)
        k = katatest.katavm()
        with k.VM(initrd=INITRD_TEST, vsock=False, cmdline=["agent.policy=/etc/kata-test/missing.json"]) as vm:
            rc = vm.wait_exit(timeout=180)
            text = vm.console_text()
            self.assertEqual(rc, 0, text[-4000:])
            self.assertIn("cannot start the agent", text)
            self.assertIn("missing.json", text)
            self.assertIn("reboot: Power down", text)


if __name__ == "__main__":
    unittest.main()
