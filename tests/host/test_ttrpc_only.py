"""The ttrpc-only flavour of the agent (-DKATA_GRPC=OFF; `make bench` builds it in
build-bench-ttrpc/, or KATA_TTRPC_BUILD_DIR names the build): it serves the API over ttrpc,
closes a gRPC connection with a log line, and is smaller than the full agent. Skipped when
that build does not exist."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent  # noqa: E402

TTRPC_BUILD = os.environ.get("KATA_TTRPC_BUILD_DIR") or os.path.join(katatest.SRC_DIR, "build-bench-ttrpc")
AGENT_TTRPC = os.path.join(TTRPC_BUILD, "bin", "kata-agent")


class TtrpcOnly(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(AGENT_TTRPC):
            raise unittest.SkipTest(f"{AGENT_TTRPC} is not built (make bench, or cmake -DKATA_GRPC=OFF "
                                    "-DKATA_TESTS=OFF and build the kata-agent target)")
        cls.agent = HostAgent(agent=AGENT_TTRPC)
        cls.agent.start(wait=False)
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                if os.path.exists(cls.agent.sock) and "listening" in cls.agent.log():
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("the ttrpc-only agent did not start: " + cls.agent.log())
        except BaseException:
            cls.agent.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.cleanup()

    def test_serves_ttrpc(self):
        self.assertEqual(self.agent.call("Check", proto="ttrpc")["status"], "SERVING")
        self.assertRegex(self.agent.call("Version", proto="ttrpc")["agent_version"], r"^\d+\.\d+\.\d+")

    def test_grpc_connection_closed_with_a_log_line(self):
        p = subprocess.run([katatest.AGENT_CTL, "--addr", self.agent.addr, "--proto", "grpc", "--timeout", "5",
                            "Check"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("this agent serves ttrpc only", self.agent.log())
        # and ttrpc is still served afterwards
        self.assertEqual(self.agent.call("Check", proto="ttrpc")["status"], "SERVING")

    def test_starting_line_says_no_grpc(self):
        starting = [json.loads(line) for line in self.agent.log().splitlines()
                    if '"msg":"starting"' in line]
        self.assertTrue(starting, self.agent.log())
        self.assertIs(starting[0]["grpc"], False)

    def test_smaller_than_the_full_agent(self):
        if not os.path.exists(katatest.AGENT):
            self.skipTest(f"{katatest.AGENT} is not built")
        self.assertLess(os.path.getsize(AGENT_TTRPC), os.path.getsize(katatest.AGENT))


if __name__ == "__main__":
    unittest.main()
