"""ExecProcess in the guest, the agent as PID 1 managing cgroups: an exec sees the init's
namespaces and cgroup; a terminal exec follows TtyWinResize; 100 concurrent execs complete
with their own exit codes while the guest's memory grows by far less than a copy of the
agent per exec, and returns to where it was. Boots initrd-crun.img (its busybox tree is
the rootfs; built by test_security_vs_crun's helper when missing)."""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import katatest  # noqa: E402
from katatest.execs import exec_process, exec_run, read_until, resize  # noqa: E402
from katatest.vmclient import GuestAgentClient  # noqa: E402
import test_security_vs_crun as crunvm  # noqa: E402

MIB = 1 << 20


class ExecInGuest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.KERNEL)
        katatest.require_vsockd()
        crunvm.ensure_crun_initrd()
        cls.vm = katatest.katavm().VM(initrd=crunvm.INITRD_CRUN, memory_mb=1024)
        cls.vm.__enter__()
        try:
            cls.vm.wait_agent(timeout=180)
            cls.c = GuestAgentClient(cls.vm)
            spec = crunvm.to_agent_spec(crunvm.probe_config(crunvm.TREE))
            spec["Process"]["Args"] = ["/bin/sh", "-c", "read x"]
            spec["Process"]["Env"] = ["PATH=/bin:/usr/bin:/sbin"]
            spec["Linux"].pop("Seccomp", None)
            cls.c.create("box", spec)
            cls.c.start("box")
        except BaseException:
            cls.vm.__exit__(*sys.exc_info())
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.remove("box")
            cls.c.close()
        finally:
            cls.vm.__exit__(None, None, None)

    def used_bytes(self, eid):
        code, out, _ = exec_run(self.c, "box", eid, ["/bin/cat", "/proc/meminfo"])
        self.assertEqual(code, 0)
        kv = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in out.decode().splitlines()}
        return kv["MemTotal"] - kv["MemAvailable"]

    def test_exec_sees_the_inits_namespaces_and_cgroup(self):
        ns = ("cgroup", "ipc", "mnt", "net", "pid", "uts")
        script = "; ".join(f"echo {n} $(readlink /proc/self/ns/{n}) $(readlink /proc/1/ns/{n})" for n in ns)
        code, out, err = exec_run(self.c, "box", "ns", ["/bin/sh", "-c", script + "; cat /proc/self/cgroup /proc/1/cgroup"])
        self.assertEqual(code, 0, err)
        lines = out.decode().splitlines()
        for line in lines[:len(ns)]:
            name, mine, init = line.split()
            self.assertEqual(mine, init, name)
        self.assertEqual(lines[len(ns)], lines[len(ns) + 1])  # the same cgroup
        self.assertIn("box", lines[len(ns)])

    def test_tty_exec_follows_resize(self):
        exec_process(self.c, "box", "tty", ["/bin/sh"], terminal=True, env=["PATH=/bin:/usr/bin", "PS1=$ "])
        self.c.write_stdin("box", b"stty size; echo M$((1+1))\n", exec_id="tty")
        read_until(self.c, "box", "tty", b"M2")
        resize(self.c, "box", "tty", 40, 120)
        self.c.write_stdin("box", b"stty size; echo M$((1+2))\n", exec_id="tty")
        self.assertIn(b"40 120", read_until(self.c, "box", "tty", b"M3"))
        self.c.close_stdin("box", exec_id="tty")
        self.c.read_all("box", exec_id="tty")
        self.assertEqual(self.c.wait("box", exec_id="tty"), 0)

    def hundred_execs(self, rnd):
        """100 execs alive at once, then all ended: (used while alive, used after)."""
        started, done, errors, codes = threading.Barrier(101), threading.Event(), [], {}

        def one(i):
            eid = f"many-{rnd}-{i}"
            try:
                exec_process(self.c, "box", eid, ["/bin/sh", "-c", f"read x; exit {i % 100}"])
                started.wait(120)
                done.wait(120)
                self.c.close_stdin("box", exec_id=eid)
                self.c.read_all("box", exec_id=eid)
                self.c.read_all("box", "stderr", exec_id=eid)
                codes[i] = self.c.wait("box", exec_id=eid)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{i}: {e}")
                started.abort()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        started.wait(180)
        during = self.used_bytes(f"mem-during-{rnd}")
        done.set()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(codes, {i: i % 100 for i in range(100)})
        return during, self.used_bytes(f"mem-after-{rnd}")

    def test_hundred_concurrent_execs_memory_flat(self):
        # The first round also grows what the agent keeps for later calls (worker threads,
        # their malloc arenas) and the kernel's caches; the second must not grow further.
        before = self.used_bytes("mem-before")
        during1, after1 = self.hundred_execs(1)
        during2, after2 = self.hundred_execs(2)
        agent = os.path.getsize(katatest.AGENT)
        per_exec = (during2 - after1) / 100
        print(f"\nguest memory used: before {before / MIB:.1f} MiB; round 1: 100 execs alive "
              f"{during1 / MIB:.1f}, after {after1 / MIB:.1f}; round 2: alive {during2 / MIB:.1f} "
              f"({per_exec / 1024:.0f} KiB per exec; the agent binary is {agent / MIB:.1f} MiB), after "
              f"{after2 / MIB:.1f} MiB", file=sys.stderr)
        self.assertLess(per_exec, agent / 4)  # a busybox sh each, no copy of the agent
        self.assertLess(after2 - after1, 4 * MIB)


if __name__ == "__main__":
    unittest.main(verbosity=2)
