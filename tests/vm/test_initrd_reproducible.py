"""The initrd is reproducible: a second build from another directory, under another umask
and at another time, with the agent rebuilt from scratch there, gives the same sha256."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402


class InitrdReproducible(unittest.TestCase):
    """A second build from another directory, under another umask and at another time, with
    the agent rebuilt, gives the same initrd sha256."""

    def test_same_sha256_from_another_tree(self):
        if not os.path.exists(katatest.INITRD):
            raise unittest.SkipTest("build/guest/initrd.img is missing: run `make guest` first")
        tmp = tempfile.mkdtemp(prefix="kata-repro-")
        try:
            src = os.path.join(tmp, "src")
            files = subprocess.run(["git", "-C", katatest.SRC_DIR, "ls-files", "-co", "--exclude-standard"],
                                   capture_output=True, text=True, check=True).stdout.split()
            for f in files:
                s = os.path.join(katatest.SRC_DIR, f)
                if not os.path.isfile(s):
                    continue
                d = os.path.join(src, f)
                os.makedirs(os.path.dirname(d), exist_ok=True)
                shutil.copy2(s, d)
            bld = os.path.join(tmp, "b")
            env = dict(os.environ, SOURCE_DATE_EPOCH="1")
            sh = f"umask 077 && cmake -S {src} -B {bld} -DKATA_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null " \
                 f"&& cmake --build {bld} -j{os.cpu_count()} --target kata-agent >/dev/null " \
                 f"&& {src}/initrd/mkinitrd.py --agent {bld}/bin/kata-agent --out {bld}/initrd.img"
            p = subprocess.run(["bash", "-c", sh], capture_output=True, text=True, env=env, timeout=1500)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

            def sha(path):
                with open(path, "rb") as f:
                    return hashlib.sha256(f.read()).hexdigest()
            self.assertEqual(sha(os.path.join(bld, "bin", "kata-agent")), sha(katatest.AGENT))
            self.assertEqual(sha(os.path.join(bld, "initrd.img")), sha(katatest.INITRD))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
