"""The agent as PID 1 reached through the vsock backend (hybrid vsock, agent-ctl's hvsock://):
health and guest details, 8 concurrent connections of 1000 calls each, refusals, and a client
killed mid-call that leaves the backend and the agent serving the next connection."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import hvsock  # noqa: E402


def repeat(addr, method, n, proto, timeout=600):
    """agent-ctl --repeat: n calls on one connection."""
    return subprocess.Popen([katatest.AGENT_CTL, "--addr", addr, "--proto", proto,
                             "--timeout", "60", "--repeat", str(n), method, "{}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class AgentOverHybridVsock(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.INITRD)
        katatest.require_vsockd()
        if not os.path.exists(katatest.AGENT_CTL):
            raise unittest.SkipTest(f"{katatest.AGENT_CTL} is missing")
        cls.vm = katatest.katavm().VM()
        cls.vm.__enter__()
        try:
            cls.vm.wait_agent(timeout=120)
        except BaseException:
            cls.vm.__exit__(*sys.exc_info())
            raise
        cls.addr = cls.vm.agent_addr()
        # gRPC always; ttrpc where this build of agent-ctl and the agent have it.
        cls.protos = ["grpc"]
        r = katatest.agent_ctl(cls.addr, "Check", proto="ttrpc", check=False)
        if r.get("status") == "SERVING":
            cls.protos.append("ttrpc")
        else:
            print(f"\n  ttrpc not tested: {r.get('_message', r)}", file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.vm.__exit__(None, None, None)

    def tearDown(self):
        p = self.vm.procs["vsockd"]
        self.assertIsNone(p.poll(), self.vm.read_log("vsockd")[-3000:])

    def test_check_and_guest_details(self):
        for proto in self.protos:
            r = katatest.agent_ctl(self.addr, "Check", proto=proto)
            self.assertEqual(r["status"], "SERVING")
            d = katatest.agent_ctl(self.addr, "GetGuestDetails", {"mem_block_size": True}, proto=proto)
            self.assertTrue(d["agent_details"]["init_daemon"])
            self.assertGreater(int(d["mem_block_size_bytes"]), 0)

    def test_8_concurrent_connections_1000_calls_each(self):
        for proto in self.protos:
            procs = [repeat(self.addr, "Check", 1000, proto) for _ in range(8)]
            results = []
            for p in procs:
                out, err = p.communicate(timeout=900)
                self.assertEqual(p.returncode, 0, f"{proto}: {err}")
                results.append(json.loads(out))
            self.assertEqual([r["calls"] for r in results], [1000] * 8)
            rates = ", ".join(f"{r['calls_per_second']:.0f}" for r in results)
            print(f"\n  {proto}: 8 x 1000 Check, calls/s per connection: {rates}", file=sys.stderr)

    def test_port_without_listener_closed_without_ok_within_5s(self):
        t0 = time.time()
        with self.assertRaises(hvsock.Refused):
            hvsock.hv_connect(self.vm.vsock_uds, 4000, timeout=10)
        self.assertLess(time.time() - t0, 5)

    def test_client_killed_mid_call_leaves_backend_and_agent_serving(self):
        for proto, sig in [(p, s) for p in self.protos for s in (signal.SIGKILL, signal.SIGTERM)]:
            p = repeat(self.addr, "GetGuestDetails", 10 ** 7, proto)
            time.sleep(2)  # calls in flight
            self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
            p.send_signal(sig)
            p.communicate(timeout=30)
            r = katatest.agent_ctl(self.addr, "Check", proto=proto)
            self.assertEqual(r["status"], "SERVING")
            q = repeat(self.addr, "Check", 100, proto)
            out, err = q.communicate(timeout=300)
            self.assertEqual(q.returncode, 0, err)
            self.assertEqual(json.loads(out)["calls"], 100)


if __name__ == "__main__":
    unittest.main()
