"""cgroups v2 in the guest, observed from inside it: each container in its own cgroup under
the containers' parent ("sandbox"), the agent in its own leaf; resources read back from the
cgroup files; UpdateContainer all-or-nothing; OOM kills and GetOOMEvent; a fork bomb held
by pids.max; pause/resume; StatsContainer; the guest-wide memory limit and its re-computation
on memory hot-plug.

The guest's cgroup files are read by short-lived reader containers that bind-mount the
guest's /sys/fs/cgroup (see katatest.cgroup_guest). Nothing here touches the host's cgroups."""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from katatest import RpcError  # noqa: E402
from katatest.cgroup_guest import Guest, flat  # noqa: E402

MiB = 1 << 20


def make_disk(test, size=8 * MiB):
    fd, path = tempfile.mkstemp(prefix="cg-disk-", suffix=".img")
    os.close(fd)
    test.addCleanup(os.unlink, path)
    with open(path, "r+b") as f:
        f.truncate(size)
    return path


class CgroupTree(unittest.TestCase):
    def test_agent_leaf_containers_parent_and_guest_memory_limit(self):
        g = Guest(self, cmdline=["agent.memory_reserve_mb=100"])
        g.create("c1", ["sleep", "1000"])
        g.start("c1")
        f = g.guest_files(["/gproc/1/cgroup", "agent/memory.min", "sandbox/memory.max",
                           "cgroup.subtree_control", "sandbox/cgroup.subtree_control",
                           "sandbox/c1/cgroup.procs", "/gproc/meminfo", "/gproc/1/oom_score_adj",
                           "/proc/self/oom_score_adj", "/proc/self/cgroup"])
        self.assertEqual(f["/gproc/1/cgroup"], "0::/agent", "the agent (PID 1) lives in /agent")
        self.assertEqual(int(f["agent/memory.min"]), 32 * MiB)
        self.assertEqual(f["/gproc/1/oom_score_adj"], "-1000")
        # A container's processes: their own oom_score_adj, their own cgroup.
        self.assertEqual(f["/proc/self/oom_score_adj"], "0")
        self.assertRegex(f["/proc/self/cgroup"], r"^0::/sandbox/reader-\d+$")
        self.assertEqual(len(f["sandbox/c1/cgroup.procs"].split()), 1)
        for ctl in ("cpu", "memory", "pids", "io", "cpuset", "hugetlb"):
            self.assertIn(ctl, f["cgroup.subtree_control"].split())
            self.assertIn(ctl, f["sandbox/cgroup.subtree_control"].split())
        mem_total = int(re.search(r"MemTotal:\s+(\d+) kB", f["/gproc/meminfo"]).group(1)) * 1024
        self.assertEqual(int(f["sandbox/memory.max"]), mem_total - 100 * MiB)
        g.remove("c1")
        self.assertIsNone(g.guest_file("sandbox/c1/cgroup.procs"), "the cgroup is removed")

    def test_systemd_cgroups_path_and_plain_path(self):
        g = Guest(self)
        g.create("c2", ["sleep", "1000"], cgroups_path="kubepods-pod1.slice:cri:c2")
        g.create("c3", ["sleep", "1000"], cgroups_path="/kubepods/pod1/c3")
        unit = "sandbox/kubepods.slice/kubepods-pod1.slice/cri-c2.scope"
        f = g.guest_files([f"{unit}/cgroup.procs", "sandbox/kubepods/pod1/c3/cgroup.procs"])
        self.assertEqual(len(f[f"{unit}/cgroup.procs"].split()), 1)
        self.assertEqual(len(f["sandbox/kubepods/pod1/c3/cgroup.procs"].split()), 1)
        g.remove("c2")
        g.remove("c3")
        f = g.guest_files(["sandbox/kubepods.slice/cgroup.procs", "sandbox/kubepods/cgroup.procs"])
        self.assertIsNone(f["sandbox/kubepods.slice/cgroup.procs"], "empty levels are removed too")
        self.assertIsNone(f["sandbox/kubepods/cgroup.procs"])
        with self.assertRaises(RpcError) as e:
            g.create("c4", ["true"], cgroups_path="/a/../b")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")


class Resources(unittest.TestCase):
    def test_read_back_update_and_rollback(self):
        g = Guest(self, disks=[make_disk(self)])
        dev = g.guest_file("/sys/block/vda/dev")
        self.assertRegex(dev, r"^\d+:\d+$")
        res = {
            "Memory": {"Limit": 64 * MiB, "Reservation": 32 * MiB, "Swap": 96 * MiB},
            "CPU": {"Shares": 1024, "Quota": 50000, "Period": 100000, "Cpus": "0", "Mems": "0"},
            "Pids": {"Limit": 32},
            "BlockIO": {"Weight": 500,
                        "ThrottleReadBpsDevice": [{"Major": int(dev.split(":")[0]),
                                                   "Minor": int(dev.split(":")[1]), "Rate": MiB}],
                        "ThrottleWriteIOPSDevice": [{"Major": int(dev.split(":")[0]),
                                                     "Minor": int(dev.split(":")[1]), "Rate": 100}]},
            "HugepageLimits": [{"Pagesize": "2MB", "Limit": 4 * MiB}],
        }
        ann = {"org.opencontainers.runtime-spec.linux.resources.unified.memory.oom.group": "1"}
        g.create("c1", ["sleep", "1000"], resources=res, annotations=ann)
        g.start("c1")
        files = ["memory.max", "memory.low", "memory.swap.max", "cpu.max", "cpu.weight",
                 "cpuset.cpus", "cpuset.mems", "pids.max", "io.max", "io.weight", "memory.oom.group",
                 "hugetlb.2MB.max"]
        f = g.guest_files([f"sandbox/c1/{x}" for x in files])
        got = {x: f[f"sandbox/c1/{x}"] for x in files}
        self.assertEqual(got["memory.max"], str(64 * MiB))
        self.assertEqual(got["memory.low"], str(32 * MiB))
        self.assertEqual(got["memory.swap.max"], str(32 * MiB))  # swap - limit
        self.assertEqual(got["cpu.max"], "50000 100000")
        self.assertEqual(got["cpu.weight"], "39")                 # 1 + (1022 * 9999) / 262142
        self.assertEqual(got["cpuset.cpus"], "0")
        self.assertEqual(got["cpuset.mems"], "0")
        self.assertEqual(got["pids.max"], "32")
        self.assertEqual(got["io.max"], f"{dev} rbps={MiB} wbps=max riops=max wiops=100")
        self.assertIn(f"default {1 + (490 * 9999) // 990}", got["io.weight"])
        self.assertEqual(got["memory.oom.group"], "1")            # unified, as given
        self.assertEqual(got["hugetlb.2MB.max"], str(4 * MiB))

        # UpdateContainer changes them.
        g.call("UpdateContainer", {"container_id": "c1", "resources": {
            "Memory": {"Limit": 128 * MiB}, "CPU": {"Shares": 2, "Quota": 20000},
            "Pids": {"Limit": -1}}})
        f = g.guest_files([f"sandbox/c1/{x}" for x in ("memory.max", "cpu.max", "cpu.weight", "pids.max")])
        self.assertEqual(f["sandbox/c1/memory.max"], str(128 * MiB))
        self.assertEqual(f["sandbox/c1/cpu.max"], "20000 100000")  # the period in force is kept
        self.assertEqual(f["sandbox/c1/cpu.weight"], "1")
        self.assertEqual(f["sandbox/c1/pids.max"], "max")

        # An invalid value part-way: nothing changes (memory.max was written first, then
        # restored when the kernel refused cpu.max).
        with self.assertRaises(RpcError) as e:
            g.call("UpdateContainer", {"container_id": "c1", "resources": {
                "Memory": {"Limit": 256 * MiB}, "CPU": {"Quota": 500, "Period": 100000}}})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT", e.exception.message)
        self.assertIn("cpu.max", e.exception.message)
        f = g.guest_files(["sandbox/c1/memory.max", "sandbox/c1/cpu.max"])
        self.assertEqual(f["sandbox/c1/memory.max"], str(128 * MiB))
        self.assertEqual(f["sandbox/c1/cpu.max"], "20000 100000")
        # Refused before anything is written: a bad value of the API itself.
        with self.assertRaises(RpcError) as e:
            g.call("UpdateContainer", {"container_id": "c1", "resources": {"Memory": {"Limit": -5}}})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")

        st = g.stats("c1")["cgroup_stats"]
        self.assertEqual(int(st["memory_stats"]["usage"]["limit"]), 128 * MiB)
        self.assertGreaterEqual(int(st["pids_stats"]["current"]), 1)
        self.assertIn("cpu_usage", st["cpu_stats"])
        g.remove("c1")


class OomAndPids(unittest.TestCase):
    def test_oom_kill_exit_137_and_oom_events_in_order(self):
        g = Guest(self)
        for cid in ("oom-a", "oom-b"):
            g.create(cid, ["cg-probe", "alloc", "64"], resources={"Memory": {"Limit": 32 * MiB}})
            g.start(cid)
            self.assertEqual(g.wait(cid), 137, g.console_tail())
        # Two kills before the first poll: both delivered, in order.
        self.assertEqual(g.call("GetOOMEvent", timeout=30)["container_id"], "oom-a")
        self.assertEqual(g.call("GetOOMEvent", timeout=30)["container_id"], "oom-b")
        self.assertEqual(flat(g.guest_file("sandbox/oom-a/memory.events"))["oom_kill"], 1)
        for cid in ("oom-a", "oom-b"):
            g.remove(cid)
        with self.assertRaises(RpcError) as e:
            g.call("GetOOMEvent", timeout=2)
        self.assertEqual(e.exception.code, "DEADLINE_EXCEEDED")

    def test_fork_bomb_stops_at_pids_max(self):
        g = Guest(self)
        g.create("bomb", ["cg-probe", "forkbomb"], resources={"Pids": {"Limit": 16}})
        g.start("bomb")
        g.read_until("bomb", "forkbomb: started")
        deadline = time.time() + 60
        current = 0
        while time.time() < deadline:
            t0 = time.time()
            g.check(timeout=10)
            self.assertLess(time.time() - t0, 10)
            current = int(g.stats("bomb")["cgroup_stats"]["pids_stats"]["current"])
            if current == 16:
                break
            time.sleep(0.5)
        self.assertEqual(current, 16)
        f = flat(g.guest_file("sandbox/bomb/pids.events"))
        self.assertGreater(f["max"], 0, "forks were refused at the limit")
        for _ in range(5):  # still 16, and the agent still answers
            g.check(timeout=10)
            self.assertEqual(int(g.stats("bomb")["cgroup_stats"]["pids_stats"]["current"]), 16)
            time.sleep(0.3)
        self.assertEqual(int(g.stats("bomb")["cgroup_stats"]["pids_stats"]["limit"]), 16)
        g.remove("bomb")
        self.assertIsNone(g.guest_file("sandbox/bomb/pids.current"))

    def test_unlimited_container_is_oom_killed_inside_the_containers_parent(self):
        g = Guest(self, memory_mb=512)
        before = flat(g.guest_file("sandbox/memory.events.local"))
        g.create("hog", ["cg-probe", "alloc", "inf"])
        t0 = time.time()
        g.start("hog")
        self.assertEqual(g.wait("hog", timeout=600), 137)
        print(f"\nthe unlimited allocator was OOM-killed {time.time() - t0:.1f} s after its start")
        g.check()
        f = g.guest_files(["sandbox/memory.events.local", "sandbox/hog/memory.events.local",
                           "sandbox/hog/memory.max"])
        self.assertEqual(f["sandbox/hog/memory.max"], "max", "the container itself had no limit")
        # The OOM was the containers' parent's (its own "oom" count), the victim the hog.
        self.assertGreater(flat(f["sandbox/memory.events.local"])["oom"], before.get("oom", 0))
        self.assertEqual(flat(f["sandbox/hog/memory.events.local"])["oom_kill"], 1)
        self.assertEqual(flat(f["sandbox/hog/memory.events.local"])["oom"], 0)
        self.assertEqual(g.call("GetOOMEvent", timeout=30)["container_id"], "hog")
        g.remove("hog")
        # The VM and the agent are fine: a new container runs.
        status, out = g.run("after", ["echo", "alive"])
        self.assertEqual((status, out.strip()), (0, "alive"))


class PauseResume(unittest.TestCase):
    def test_pause_stops_a_counter_and_resume_restarts_it(self):
        # The counter file is on a guest tmpfs (the guest's /tmp) bound into both the counting
        # container and the readers, so it is read while the counter is frozen.
        g = Guest(self)
        shared = [{"destination": "/shared", "type": "bind", "source": "/tmp", "options": ["bind"]}]
        g.create("counter", ["cg-probe", "counter", "/shared/counter", "100"], mounts=shared)
        g.start("counter")

        def value():
            status, out = g.run(f"peek-{time.time_ns()}", ["sh", "-c", "tail -n 1 /shared/counter"],
                                mounts=shared)
            return int(out.strip() or 0)

        deadline = time.time() + 30
        while value() < 3:
            self.assertLess(time.time(), deadline)
            time.sleep(0.3)
        t0 = time.time()
        g.call("PauseContainer", {"container_id": "counter"})
        print(f"\nPauseContainer returned frozen after {(time.time() - t0) * 1000:.0f} ms (agent-ctl included)")
        self.assertEqual(g.guest_file("sandbox/counter/cgroup.freeze"), "1")
        self.assertIn("frozen 1", g.guest_file("sandbox/counter/cgroup.events"))
        v1 = value()
        time.sleep(2.5)
        self.assertEqual(value(), v1, "the counter stopped while paused")
        with self.assertRaises(RpcError) as e:
            g.call("PauseContainer", {"container_id": "counter"})
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        g.check()
        g.call("ResumeContainer", {"container_id": "counter"})
        deadline = time.time() + 30
        while value() <= v1:
            self.assertLess(time.time(), deadline, "the counter did not advance after Resume")
            time.sleep(0.3)
        with self.assertRaises(RpcError) as e:
            g.call("ResumeContainer", {"container_id": "counter"})
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        # A paused container can still be removed.
        g.call("PauseContainer", {"container_id": "counter"})
        g.remove("counter")


class Stats(unittest.TestCase):
    def test_memory_usage_rises_by_the_allocation(self):
        g = Guest(self)
        g.create("alloc", ["sh", "-c", "read x; exec cg-probe alloc 50 hold"])
        g.start("alloc")
        time.sleep(1)
        before = g.stats("alloc")
        usage0 = int(before["cgroup_stats"]["memory_stats"]["usage"]["usage"])
        g.call("WriteStdin", {"container_id": "alloc", "exec_id": "alloc", "data": "Z28K"})  # "go\n"
        g.read_until("alloc", "allocated 50 MiB")
        after = g.stats("alloc")
        usage1 = int(after["cgroup_stats"]["memory_stats"]["usage"]["usage"])
        self.assertGreaterEqual(usage1 - usage0, 40 * MiB, (usage0, usage1))
        ms = after["cgroup_stats"]["memory_stats"]
        self.assertGreaterEqual(int(ms["stats"]["anon"]), 40 * MiB)
        self.assertTrue(ms.get("use_hierarchy"))
        self.assertGreaterEqual(int(ms["usage"]["max_usage"]), usage1)
        names = [n["name"] for n in after.get("network_stats", [])]
        self.assertIn("lo", names)
        g.remove("alloc")


class MemoryHotplug(unittest.TestCase):
    def test_containers_limit_follows_hot_plugged_memory(self):
        g = Guest(self, memory_mb=512, cmdline=["memhp_default_state=online"])
        f = g.guest_files(["sandbox/memory.max", "/gproc/meminfo"])
        max0 = int(f["sandbox/memory.max"])
        total0 = int(re.search(r"MemTotal:\s+(\d+) kB", f["/gproc/meminfo"]).group(1)) * 1024
        g.vm.qmp.cmd("object-add", **{"qom-type": "memory-backend-memfd", "id": "hp1",
                                      "size": 256 * MiB, "share": True})
        g.vm.qmp.cmd("device_add", driver="pc-dimm", id="dimm1", memdev="hp1")
        deadline = time.time() + 60
        while True:
            f = g.guest_files(["sandbox/memory.max", "/gproc/meminfo"])
            total = int(re.search(r"MemTotal:\s+(\d+) kB", f["/gproc/meminfo"]).group(1)) * 1024
            if total > total0 and int(f["sandbox/memory.max"]) > max0:
                break
            self.assertLess(time.time(), deadline, f"memory.max {f['sandbox/memory.max']}, MemTotal {total}")
            time.sleep(1)
        self.assertEqual(total - total0, 256 * MiB)
        # Same reserve rule: MemTotal/16 within [64, 256] MiB.
        reserve = min(max(total // 16, 64 * MiB), 256 * MiB)
        self.assertEqual(int(f["sandbox/memory.max"]), total - reserve)


if __name__ == "__main__":
    unittest.main(verbosity=2)
