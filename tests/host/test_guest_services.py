"""Guest services with the agent as a normal process on the host (not PID 1): requests are
validated, what would change the host (clock, entropy, CPUs, memory, compaction) is refused
with FAILED_PRECONDITION, and GetMetrics, GetGuestDetails and GetDiagnosticData report this
process and this machine. Also checks the strict Prometheus parser the tests rely on."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from katatest import HostAgent, RpcError, count_fds  # noqa: E402
from katatest.prometheus import ExpositionError, parse_exposition, value  # noqa: E402


class ParserSelfTest(unittest.TestCase):
    """The parser refuses what it must, so its acceptance of the agent's output means something."""

    def test_rejects_malformed_expositions(self):
        good = '# HELP a_total A.\n# TYPE a_total counter\na_total{m="x"} 1\n'
        self.assertEqual(value(parse_exposition(good), "a_total", m="x"), 1)
        for bad in [good[:-1],                                         # no final newline
                    good + 'a_total{m="x"} 2\n',                       # duplicate series
                    good + "# TYPE a_total counter\n",                 # TYPE again
                    "# TYPE a counter\na 1\n",                         # counter without _total
                    "# TYPE b gauge\nb{m=x} 1\n",                      # unquoted label value
                    "# TYPE b gauge\nb 1x\n",                          # bad value
                    "# TYPE b gauge\nb 1\n# TYPE c gauge\nc 1\nb 2\n",  # family split
                    '# TYPE b gauge\nb{m="\\q"} 1\n',                  # bad escape
                    "# TYPE a_total counter\na_total -1\n",            # negative counter
                    "# TYPE b gaug\nb 1\n",                            # unknown type
                    "# TYPE b gauge\n\nb 1\n"]:                        # empty line
            with self.assertRaises(ExpositionError, msg=bad):
                parse_exposition(bad)


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+)", f.read(), re.M).group(1))


class HostGuestServices(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = HostAgent().__enter__()
        cls.addClassCleanup(cls.agent.__exit__, None, None, None)

    def call(self, method, req=None, **kw):
        return self.agent.call(method, req or {}, **kw)

    def refused(self, method, req, code, text=None):
        with self.assertRaises(RpcError) as e:
            self.call(method, req)
        self.assertEqual(e.exception.code, code, e.exception.message)
        if text:
            self.assertIn(text, e.exception.message)
        return e.exception.message

    def test_machine_changes_refused_off_the_guest_after_validation(self):
        before = time.time()
        self.refused("SetGuestDateTime", {"Sec": 10, "Usec": 2000000}, "INVALID_ARGUMENT", "Usec")
        self.refused("SetGuestDateTime", {"Sec": 10}, "FAILED_PRECONDITION", "guest's init")
        self.assertLess(abs(time.time() - before), 30)  # the host's clock did not move
        self.refused("ReseedRandomDev", {}, "INVALID_ARGUMENT", "no data")
        self.refused("ReseedRandomDev", {"data": "AAAA"}, "FAILED_PRECONDITION")
        self.refused("OnlineCPUMem", {"nb_cpus": 100000}, "INVALID_ARGUMENT", "nb_cpus")
        self.refused("OnlineCPUMem", {"nb_cpus": 1}, "FAILED_PRECONDITION")
        self.refused("MemHotplugByProbe", {}, "INVALID_ARGUMENT", "memHotplugProbeAddr")
        self.refused("MemHotplugByProbe", {"memHotplugProbeAddr": [0]}, "FAILED_PRECONDITION")
        self.refused("MemAgentCompactSet", {"period_secs": 0}, "INVALID_ARGUMENT", "period_secs")
        self.refused("MemAgentCompactSet", {"compact_order": 11}, "INVALID_ARGUMENT", "compact_order")
        self.refused("MemAgentCompactSet", {"disabled": False, "period_secs": 5}, "FAILED_PRECONDITION")
        self.call("MemAgentCompactSet", {"disabled": True})
        self.refused("MemAgentMemcgSet", {"period_secs": 60}, "FAILED_PRECONDITION", "LRU")
        self.call("MemAgentMemcgSet", {"disabled": True})

    def test_guest_details_memory_fields(self):
        d = self.call("GetGuestDetails", {"mem_block_size": True, "mem_hotplug_probe": True})
        try:
            with open("/sys/devices/system/memory/block_size_bytes") as f:
                block = int(f.read(), 16)
        except OSError:
            block = 0
        self.assertEqual(int(d["mem_block_size_bytes"]), block)
        self.assertEqual(d["support_mem_hotplug_probe"],
                         os.access("/sys/devices/system/memory/probe", os.W_OK))
        self.assertFalse(d["agent_details"]["init_daemon"])

    def test_metrics_parse_and_match_the_agent_process(self):
        pid = self.agent.pid()
        text = self.call("GetMetrics")["metrics"]
        fams = parse_exposition(text)
        rss = status_field(pid, "VmRSS") * 1024
        self.assertLess(abs(value(fams, "kata_agent_process_resident_memory_bytes") - rss), 0.2 * rss)
        self.assertLessEqual(abs(value(fams, "kata_agent_process_threads") - status_field(pid, "Threads")), 2)
        self.assertLessEqual(abs(value(fams, "kata_agent_process_open_fds") - count_fds(pid)), 3)
        with open("/proc/meminfo") as f:
            total = int(re.search(r"^MemTotal:\s+(\d+)", f.read(), re.M).group(1)) * 1024
        self.assertEqual(value(fams, "kata_guest_meminfo_bytes", field="MemTotal"), total)
        self.assertEqual(value(fams, "kata_guest_cpus_online"), os.cpu_count())
        self.assertEqual(value(fams, "kata_agent_containers"), 0)
        for family in ("kata_agent_process_cpu_seconds_total", "kata_agent_rpc_calls_total",
                       "kata_agent_rpc_errors_total"):
            self.assertEqual(fams[family]["type"], "counter")

    def test_rpc_counters_and_no_fd_growth(self):
        m = "grpc.AgentService/GetMetrics"
        s = "grpc.AgentService/OnlineCPUMem"
        f0 = parse_exposition(self.call("GetMetrics")["metrics"])
        self.call("OnlineCPUMem", {"nb_cpus": 100000}, check=False)
        self.call("OnlineCPUMem", {"nb_cpus": 100000}, check=False)
        fds = count_fds(self.agent.pid())
        for _ in range(20):
            self.call("GetMetrics")
        f1 = parse_exposition(self.call("GetMetrics")["metrics"])
        self.assertEqual(value(f1, "kata_agent_rpc_calls_total", method=m),
                         value(f0, "kata_agent_rpc_calls_total", method=m) + 21)
        self.assertEqual(value(f1, "kata_agent_rpc_errors_total", method=s),
                         value(f0, "kata_agent_rpc_errors_total", method=s) + 2)
        self.assertLessEqual(count_fds(self.agent.pid()), fds + 1)

    def test_diagnostic_data(self):
        agent = self.call("GetDiagnosticData", {"log_type": "agent"})["data"]
        self.assertIn('"msg":"listening"', agent)
        self.assertTrue(all(l.startswith("{") for l in agent.splitlines()), agent[:500])
        self.refused("GetDiagnosticData", {"log_type": "agent", "container_id": "nope"}, "NOT_FOUND")
        self.refused("GetDiagnosticData", {"log_type": "bogus"}, "INVALID_ARGUMENT", "bogus")
        if os.geteuid() == 0:
            self.assertTrue(self.call("GetDiagnosticData", {"log_type": "dmesg"})["data"])


if __name__ == "__main__":
    unittest.main()
