"""The short version of `make soak` (bench/soak.py): 300 exec cycles and 60 container
cycles against one agent in the guest. The agent's fds and threads end at the baseline, no
zombie appears in the guest, and VmRSS grows by less than 1 MiB between the 5th and the
10th sample of each phase."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import katatest  # noqa: E402


class ShortSoak(unittest.TestCase):
    def test_no_leak_over_execs_and_containers(self):
        katatest.require_guest(katatest.KERNEL, katatest.INITRD_TEST)
        katatest.require_vsockd()
        import soak
        result = soak.run(execs=300, containers=60)
        with tempfile.TemporaryDirectory() as d:
            soak.plot(result, os.path.join(d, "soak.png"))  # the plot code runs too
        lines = [f"{'PASS' if c['pass'] else 'FAIL'} {c['check']}: {c['detail']}" for c in result["checks"]]
        print("\n  " + "\n  ".join(lines), file=sys.stderr)
        self.assertEqual(len(result["exec_samples"]), 10)
        self.assertEqual(len(result["container_samples"]), 10)
        for c in result["checks"]:
            self.assertTrue(c["pass"], f"{c['check']}: {c['detail']}")


if __name__ == "__main__":
    unittest.main()
