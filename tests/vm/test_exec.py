"""ExecProcess in the guest, the agent as PID 1 managing cgroups: an exec sees the init's
namespaces and cgroup; a terminal exec follows TtyWinResize; 100 concurrent execs complete
with their own exit codes while the guest's memory grows by far less than a copy of the
agent per exec, and a second round grows neither the agent's RSS nor the kernel's
per-process memory any further. Boots initrd-crun.img (its busybox tree is
the rootfs; built by test_security_vs_crun's helper when missing)."""
import os
import re
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
        text = self.c.call("GetMetrics", self.c.pb.GetMetricsRequest()).metrics
        agent = {m.group(1): float(m.group(2)) for m in re.finditer(
            r"^kata_agent_(process_resident_memory_bytes|process_threads|rpc_worker_threads) (\S+)$", text, re.M)}
        self.samples[eid] = (kv, agent)
        return kv["MemTotal"] - kv["MemAvailable"]

    def breakdown(self, a, b):
        """What changed between two samples, in KiB: the agent's RSS and threads, the kernel's."""
        (ka, aa), (kb, ab) = self.samples[a], self.samples[b]
        parts = [f"agent RSS {(ab['process_resident_memory_bytes'] - aa['process_resident_memory_bytes']) / 1024:+.0f}",
                 f"agent threads {aa['process_threads']:.0f}->{ab['process_threads']:.0f}"]
        parts += [f"{k} {(kb[k] - ka[k]) / 1024:+.0f}" for k in
                  ("AnonPages", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "Shmem",
                   "Cached", "MemFree") if k in ka and k in kb]
        return f"{a} -> {b} (KiB): " + ", ".join(parts)

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
        # their stacks, the malloc arena) and the kernel's caches; the second must not grow
        # further.
        self.samples = {}
        before = self.used_bytes("mem-before")
        during1, after1 = self.hundred_execs(1)
        during2, after2 = self.hundred_execs(2)
        agent = os.path.getsize(katatest.AGENT)
        per_exec = (during2 - after1) / 100
        print(f"\nguest memory used: before {before / MIB:.1f} MiB; round 1: 100 execs alive "
              f"{during1 / MIB:.1f}, after {after1 / MIB:.1f}; round 2: alive {during2 / MIB:.1f} "
              f"({per_exec / 1024:.0f} KiB per exec; the agent binary is {agent / MIB:.1f} MiB), after "
              f"{after2 / MIB:.1f} MiB", file=sys.stderr)
        why = self.breakdown("mem-after-1", "mem-after-2")
        print(self.breakdown("mem-before", "mem-after-1"), file=sys.stderr)
        print(why, file=sys.stderr)
        self.assertLess(per_exec, agent / 4)  # a busybox sh each, no copy of the agent
        # Flat from the end of round 1 to the end of round 2, counted where a leak would
        # show: the agent's RSS, and the kernel memory of processes, fds and tmpfs files.
        # (MemFree itself moves by MiBs with the pages parked on per-CPU free lists.)
        (k1, a1), (k2, a2) = self.samples["mem-after-1"], self.samples["mem-after-2"]
        rss = "process_resident_memory_bytes"
        self.assertLess(a2[rss] - a1[rss], 3 * MIB, why)
        kernel = ("SUnreclaim", "KernelStack", "PageTables", "Shmem")
        self.assertLess(sum(k2[k] - k1[k] for k in kernel), 1 * MIB, why)


if __name__ == "__main__":
    unittest.main(verbosity=2)
