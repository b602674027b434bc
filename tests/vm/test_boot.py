"""Guest boot: our kernel + initrd under QEMU with the agent as PID 1, checked through the
serial console (and over hybrid vsock when the backend is built)."""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402


def console_json(text, msg):
    for line in text.splitlines():
        if f'"msg":"{msg}"' in line:
            return json.loads(line[line.index("{"):])
    return None


class Boot(unittest.TestCase):
    def setUp(self):
        katatest.require_guest(katatest.INITRD)
        self.k = katatest.katavm()

    def test_boots_to_listening_and_logs_options(self):
        with self.k.VM(vsock=False, cmdline=["agent.log=debug", "agent.hotplug_timeout=5",
                                             "agent.frobnicate=1", "agent.container_pipe_size=abc",
                                             "agent.server_addr=unix:///run/agent.sock"]) as vm:
            listening = vm.wait_agent(timeout=60)
            self.assertEqual(listening["pid"], 1)
            self.assertEqual(listening["addr"], "unix:///run/agent.sock")
            text = vm.console_text()
            start = console_json(text, "starting")
            self.assertIsNotNone(start, text)
            self.assertTrue(start["pid1"])
            self.assertEqual(start["log_level"], "debug")
            self.assertEqual(start["hotplug_timeout_s"], 5)
            self.assertEqual(start["container_pipe_size"], 0)
            self.assertIn("ignoring unknown option agent.frobnicate=1", text)
            self.assertRegex(text, r"invalid value 'abc' for agent.container_pipe_size")
            # Re-rooted off the initramfs: no error about it.
            self.assertNotIn("cannot re-root", text)

    def test_bad_server_addr_powers_off_cleanly(self):
        with self.k.VM(vsock=False, cmdline=["agent.server_addr=bogus://x"]) as vm:
            rc = vm.wait_exit(timeout=120)
            text = vm.console_text()
            self.assertEqual(rc, 0, text)  # pvpanic would have made a panic exit non-zero
            self.assertIn("bogus://x", text)
            self.assertIn("cannot start the agent", text)
            self.assertIn("reboot: Power down", text)

    def test_agent_over_hybrid_vsock(self):
        katatest.require_vsockd()
        with self.k.VM() as vm:
            vm.wait_agent(timeout=60)
            r = katatest.agent_ctl(vm.agent_addr(), "Check", proto="grpc")
            self.assertEqual(r["status"], "SERVING")
            d = katatest.agent_ctl(vm.agent_addr(), "GetGuestDetails", {"mem_block_size": True}, proto="grpc")
            self.assertTrue(d["agent_details"]["init_daemon"])
            self.assertTrue(d["agent_details"]["supports_seccomp"])
            self.assertGreater(int(d["mem_block_size_bytes"]), 0)


class DiskBoot(unittest.TestCase):
    """The rootfs-builder images (same content as the initrd, the agent as /sbin/init) boot
    from a virtio-blk disk without an initrd, and the agent answers over hybrid vsock."""

    def boot(self, fstype):
        image = os.path.join(katatest.GUEST_DIR, f"rootfs.{fstype}")
        katatest.require_guest(image)
        katatest.require_vsockd()
        k = katatest.katavm()
        with k.VM(initrd=False, quiet=False, disks=[{"path": image, "readonly": True}],
                  cmdline=["root=/dev/vda", f"rootfstype={fstype}", "ro"]) as vm:
            listening = vm.wait_agent(timeout=90)
            self.assertEqual(listening["pid"], 1)
            text = vm.console_text()
            self.assertRegex(text, rf"VFS: Mounted root \({fstype} filesystem\) readonly")
            self.assertIsNone(re.search(r"Unpacking initramfs|Trying to unpack rootfs", text))
            r = katatest.agent_ctl(vm.agent_addr(), "Check", proto="ttrpc")
            self.assertEqual(r["status"], "SERVING")

    def test_ext4_image(self):
        self.boot("ext4")

    def test_erofs_image(self):
        self.boot("erofs")


class KernelSmoke(unittest.TestCase):
    """Each group of kernel options used once, by a script run instead of the agent."""

    def test_kernel_option_groups(self):
        katatest.require_guest(katatest.INITRD_TEST)
        k = katatest.katavm()
        with k.VM(initrd=katatest.INITRD_TEST, vsock=False,
                  cmdline=["rdinit=/usr/bin/kernel-smoke"]) as vm:
            vm.wait_console(r"SMOKE-DONE", timeout=120)
            text = vm.console_text()
            self.assertEqual(vm.wait_exit(60), 0)
        fails = [l for l in text.splitlines() if l.startswith("SMOKE ") and " ok" not in l]
        self.assertEqual(fails, [], text)
        ctl = re.search(r"SMOKE-CONTROLLERS (.*)", text).group(1).split()
        for c in ("cpuset", "cpu", "io", "memory", "hugetlb", "pids"):
            self.assertIn(c, ctl)
        self.assertGreaterEqual(text.count("SMOKE "), 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
