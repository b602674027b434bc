"""The guest kernel configuration check: kernel-config/build-kernel.sh --check-only merges
allnoconfig with our fragments and must fail, naming the option, whenever a requested value
does not survive into the final .config. Needs Debian's linux-source-6.1 (no root, no VM)."""
import os
import subprocess
import tempfile
import textwrap
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "kernel-config", "build-kernel.sh")
TARBALL = "/usr/src/linux-source-6.1.tar.xz"


def have_kernel_source():
    r = subprocess.run(["dpkg-query", "-W", "linux-source-6.1"], capture_output=True)
    return r.returncode == 0 and os.path.exists(TARBALL)


@unittest.skipUnless(have_kernel_source(),
                     "SKIPPED: linux-source-6.1 is not installed (apt-get install linux-source-6.1)")
class KernelConfigCheck(unittest.TestCase):
    def check_only(self, *args):
        r = subprocess.run([SCRIPT, "--check-only", *args], capture_output=True, text=True,
                           timeout=240)
        return r.returncode, r.stdout + r.stderr

    def fragment(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".config", delete=False)
        self.addCleanup(os.unlink, f.name)
        f.write(textwrap.dedent(text))
        f.close()
        return f.name

    def test_our_fragments_pass(self):
        rc, out = self.check_only()
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\d+ options verified")
        self.assertIn("configuration OK", out)

    def test_arm64_fragment_merges(self):
        rc, out = self.check_only("--arch", "arm64")
        self.assertEqual(rc, 0, out)

    def test_options_that_cannot_be_set_fail_and_are_named(self):
        bad = self.fragment("""\
            # USB_STORAGE depends on USB, which our fragments leave off.
            CONFIG_USB_STORAGE=y
            # A misspelling of VIRTIO_BLK.
            CONFIG_VIRTIO_BLOCK=y
            # No modules: a tristate asked for as m ends up y.
            CONFIG_VIRTIO_NET=m
            # Harmless and satisfiable: must not be reported.
            CONFIG_VIRTIO_BLK=y
            """)
        rc, out = self.check_only("--extra-fragment", bad)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"CONFIG_USB_STORAGE: requested y, .*dependencies are not met")
        self.assertRegex(out, r"CONFIG_VIRTIO_BLOCK: requested y, .*no such option")
        self.assertRegex(out, r"CONFIG_VIRTIO_NET: requested m, final \.config has y")
        self.assertNotIn("CONFIG_VIRTIO_BLK:", out)
        self.assertIn("3 requested option(s)", out)

    def test_malformed_fragment_is_rejected(self):
        bad = self.fragment("VIRTIO_BLK=y\n")
        rc, out = self.check_only("--extra-fragment", bad)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("not a config line: VIRTIO_BLK=y", out)


if __name__ == "__main__":
    unittest.main()
