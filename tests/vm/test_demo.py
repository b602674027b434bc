"""`make demo` as a test: the same flow, end to end (boot, hybrid vsock, CreateSandbox, a
busybox container whose output is checked, DestroySandbox powering the guest off with
QEMU exiting 0 and "reboot: Power down" on the console)."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402


class Demo(unittest.TestCase):
    def test_demo_flow(self):
        katatest.require_guest(katatest.INITRD_TEST)
        katatest.require_vsockd()
        p = subprocess.run(["/usr/bin/python3", os.path.join(katatest.SRC_DIR, "tools", "demo.py")],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, KATA_BUILD_DIR=katatest.BUILD_DIR))
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        # The container's own output, from inside it.
        self.assertRegex(out, r"Linux demo-container 6\.1\.\d+ .* x86_64")
        self.assertIn("uid=0(root) gid=0(root)", out)
        self.assertRegex(out, r"\$ cat /proc/self/cgroup\n0::/")
        self.assertIn("exit status 0", out)
        self.assertIn("guest powered off (reboot: Power down), QEMU exited 0", out)
        m = re.search(r"boot-to-ready ([0-9.]+) s .* total ([0-9.]+) s", out)
        self.assertIsNotNone(m, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
