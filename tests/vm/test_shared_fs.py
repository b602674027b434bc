"""Shared filesystems and volumes in a VM: virtio-fs (QEMU's virtiofsd) and 9p round trips
between the host and containers, container rootfs served over virtio-fs (directly and as
an overlay's lower layer), ephemeral and local volumes shared by two containers and released
by the last one, CopyFile (chunked, modes, owners; outside paths refused),
UpdateEphemeralMounts, RemoveStaleVirtiofsShareMounts, and the request fields this agent
refuses on purpose."""
import hashlib
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import RpcError  # noqa: E402
from katatest.storage_vm import StorageGuest, bind, container_request  # noqa: E402

MiB = 1 << 20
BUSYBOX_TREE = os.path.join(katatest.GUEST_DIR, "busybox-rootfs")
SHARE = "/run/kata-containers/shared/containers"
SHARE_9P = "/run/kata-containers/shared/9p"
SHM = "/run/kata-containers/sandbox/shm"
EPHEMERAL = "/run/kata-containers/sandbox/ephemeral/scratch"
LOCAL = "/run/kata-containers/sandbox/local/cache"


class SharedFs(unittest.TestCase):
    """One q35 guest with a virtio-fs share and a 9p share; tests run in name order."""

    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.INITRD_TEST)
        katatest.require_vsockd()
        k = katatest.katavm()
        if not os.path.exists(k.VIRTIOFSD):
            raise RuntimeError(f"{k.VIRTIOFSD} is missing (qemu-system-common): virtio-fs tests are mandatory")
        if not os.path.isdir(BUSYBOX_TREE):
            raise unittest.SkipTest(f"{BUSYBOX_TREE} is missing: run `make guest` first")
        cls.tmp = tempfile.mkdtemp(prefix="kata-sharedfs-")
        cls.share = os.path.join(cls.tmp, "virtiofs")
        cls.share9p = os.path.join(cls.tmp, "9p")
        os.makedirs(cls.share)
        os.makedirs(cls.share9p)
        cls.vm = k.VM(initrd=katatest.INITRD_TEST, cmdline=["agent.log=debug"],
                      virtiofs=(cls.share, "kataShared"), share_9p=(cls.share9p, "kata9p"))
        try:
            cls.vm.start()
            cls.g = StorageGuest(cls.vm)
            cls.g.wait_ready()
            # As the Kata runtime sends them (kata_agent.go): the share, and the sandbox's shm.
            cls.g.call("CreateSandbox", {"hostname": "fs", "sandbox_id": "fs", "storages": [
                {"driver": "virtio-fs", "source": "kataShared", "fstype": "virtiofs",
                 "mount_point": SHARE + "/", "options": []},
                {"driver": "9p", "source": "kata9p", "fstype": "9p", "mount_point": SHARE_9P,
                 "options": ["trans=virtio,version=9p2000.L,cache=mmap", "nodev", "msize=65536"]},
                {"driver": "ephemeral", "source": "shm", "fstype": "tmpfs", "mount_point": SHM,
                 "options": ["noexec", "nosuid", "nodev", "mode=1777", f"size={8 * MiB}"]},
            ]})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        vm = getattr(cls, "vm", None)
        if vm is not None:
            if os.environ.get("KATA_VM_KEEP"):
                vm.keep_workdir = True
                sys.stderr.write(f"guest logs kept in {vm.workdir}\n")
            vm.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is not None and any(t is self for t, _ in result.errors + result.failures):
            sys.stderr.write(f"---- guest console (tail) ----\n{self.vm.console_text()[-8000:]}\n")

    def test_0_sandbox_storages_mounted(self):
        m = self.g.guest_mounts()
        self.assertEqual(m[SHARE][0], "virtiofs")
        self.assertEqual(m[SHARE][1], "kataShared")
        self.assertEqual(m[SHARE_9P][0], "9p")
        self.assertEqual(m[SHM][0], "tmpfs")
        details = self.g.call("GetGuestDetails", {})["agent_details"]
        for h in ("blk", "mmioblk", "scsi", "virtio-fs", "9p", "ephemeral", "local", "overlayfs"):
            self.assertIn(h, details["storage_handlers"])
        self.assertEqual(sorted(details["device_handlers"]), ["blk", "mmioblk", "scsi"])

    def round_trip(self, host_dir, guest_dir, cid):
        os.makedirs(os.path.join(host_dir, cid))
        with open(os.path.join(host_dir, cid, "host.txt"), "w") as f:
            f.write(f"written on the host for {cid}\n")
        status, out = self.g.run(cid, ["/bin/sh", "-c", "cat /vol/host.txt; echo written in $(hostname) > /vol/guest.txt"],
                                 mounts=[bind(f"{guest_dir}/{cid}", "/vol")])
        self.assertEqual(status, 0, out)
        self.assertEqual(out, f"written on the host for {cid}\n")
        with open(os.path.join(host_dir, cid, "guest.txt")) as f:
            self.assertEqual(f.read(), "written in storage-test\n")

    def test_1_virtiofs_round_trip(self):
        self.round_trip(self.share, SHARE, "vfs-vol")

    def test_2_container_rootfs_over_virtiofs(self):
        host_root = os.path.join(self.share, "fsroot", "rootfs")
        shutil.copytree(BUSYBOX_TREE, host_root, symlinks=True)
        status, out = self.g.run("fsroot", ["/bin/sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo; echo from-the-container > /marker"],
                                 root=f"{SHARE}/fsroot/rootfs", root_readonly=False)
        self.assertEqual(status, 0, out)
        self.assertIn("virtiofs", out)
        with open(os.path.join(host_root, "marker")) as f:
            self.assertEqual(f.read(), "from-the-container\n")

    def test_3_overlay_rootfs_over_virtiofs(self):
        lower = f"{SHARE}/fsroot/rootfs"
        if not os.path.isdir(os.path.join(self.share, "fsroot", "rootfs")):
            shutil.copytree(BUSYBOX_TREE, os.path.join(self.share, "fsroot", "rootfs"), symlinks=True)
        mp = "/run/kata-containers/ovl/rootfs"
        storage = {"driver": "overlayfs", "source": "overlay", "fstype": "overlay", "mount_point": mp,
                   "options": [f"lowerdir={lower}", "io.katacontainers.fs-opt.overlay-rw"]}
        status, out = self.g.run("ovl", ["/bin/sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo; "
                                         "echo upper > /overlay-marker; cat /overlay-marker; ls /bin/sh"],
                                 root=mp, root_readonly=False, storages=[storage])
        self.assertEqual(status, 0, out)
        self.assertIn(" - overlay ", out)
        self.assertIn("upper\n/bin/sh", out)
        self.assertFalse(os.path.exists(os.path.join(self.share, "fsroot", "rootfs", "overlay-marker")),
                         "the lower layer (the host's) is untouched")
        self.assertNotIn(mp, self.g.guest_mounts(), "unmounted with its container")

    def test_4_9p_round_trip(self):
        self.round_trip(self.share9p, SHARE_9P, "p9-vol")

    def test_5_ephemeral_and_local_shared_by_two_containers(self):
        storages = [
            {"driver": "ephemeral", "source": "tmpfs", "fstype": "tmpfs", "mount_point": EPHEMERAL,
             "options": [f"size={4 * MiB}"]},
            {"driver": "local", "source": "local", "fstype": "local", "mount_point": LOCAL,
             "options": ["mode=0777"]},
        ]
        mounts = [bind(EPHEMERAL, "/e"), bind(LOCAL, "/l")]
        a = "echo a > /e/a; echo a > /l/a; until [ -e /e/b ] && [ -e /l/b ]; do sleep 0.1; done; cat /e/b /l/b"
        b = "until [ -e /e/a ] && [ -e /l/a ]; do sleep 0.1; done; cat /e/a /l/a; echo b > /e/b; echo b > /l/b"
        self.g.call("CreateContainer", container_request("vol-a", ["/bin/sh", "-c", a], mounts=mounts,
                                                         storages=storages))
        self.g.call("CreateContainer", container_request("vol-b", ["/bin/sh", "-c", b], mounts=mounts,
                                                         storages=storages))
        join_a = self.g.in_thread(self.g.start_and_collect, "vol-a")
        status_b, out_b = self.g.start_and_collect("vol-b")
        status_a, out_a = join_a()
        self.assertEqual((status_a, out_a), (0, "b\nb\n"))
        self.assertEqual((status_b, out_b), (0, "a\na\n"))
        m = self.g.guest_mounts()
        self.assertEqual(m[EPHEMERAL][0], "tmpfs")
        self.g.remove("vol-a")
        self.assertIn(EPHEMERAL, self.g.guest_mounts(), "the first RemoveContainer keeps it")
        self.g.remove("vol-b")
        self.assertNotIn(EPHEMERAL, self.g.guest_mounts(), "the second RemoveContainer unmounts it")
        # The local volume is a directory of the sandbox: it stays (with its mode) for the
        # next container that names it.
        status, out = self.g.run("vol-c", ["/bin/sh", "-c", "cat /l/a /l/b; stat -c %a /l"],
                                 mounts=[bind(LOCAL, "/l")], storages=storages[1:])
        self.assertEqual((status, out), (0, "a\nb\n777\n"))

    def test_5b_hugetlbfs_ephemeral(self):
        mp = "/run/kata-containers/sandbox/ephemeral/huge"
        storage = {"driver": "ephemeral", "source": "nodev", "fstype": "hugetlbfs", "mount_point": mp,
                   "options": [f"pagesize={2 * MiB},size={4 * MiB}"]}
        status, out = self.g.run("huge", ["/bin/sh", "-c", "grep HugePages_Total /proc/meminfo; "
                                          "grep ' /huge ' /proc/self/mountinfo | sed 's/.* - //'"],
                                 mounts=[bind(mp, "/huge")], storages=[storage])
        self.assertEqual(status, 0, out)
        self.assertRegex(out, r"HugePages_Total:\s+2\nhugetlbfs nodev .*pagesize=2M")

    def test_6_copy_file_chunks_modes_owner_and_refusals(self):
        data = os.urandom(3 * MiB)
        path = "/run/kata-containers/copytest/sub/data.bin"
        for off in range(0, len(data), MiB):
            import base64
            self.g.call("CopyFile", {"path": path, "file_size": len(data), "file_mode": 0o100640,
                                     "dir_mode": 0o750, "uid": 1234, "gid": 5678, "offset": off,
                                     "data": base64.b64encode(data[off:off + MiB]).decode()}, timeout=60)
        status, out = self.g.run("copied", ["/bin/sh", "-c", "md5sum /c/sub/data.bin; stat -c '%u %g %a %s' /c/sub/data.bin; "
                                            "stat -c '%a' /c/sub; ls /c/sub"],
                                 mounts=[bind("/run/kata-containers/copytest", "/c")])
        self.assertEqual(status, 0, out)
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[0], hashlib.md5(data).hexdigest())
        self.assertEqual(lines[1], f"1234 5678 640 {len(data)}")
        self.assertEqual(lines[2], "750")
        self.assertEqual(lines[3:], ["data.bin"], "no temporary file left")
        # Outside the tree, "..", a symlink out of it.
        for bad in ("/etc/evil", "/run/kata-containers/../../etc/evil", "/run/kata-containersX/evil"):
            with self.assertRaises(RpcError) as e:
                self.g.call("CopyFile", {"path": bad, "file_size": 1, "file_mode": 0o100644, "data": "eA=="})
            self.assertEqual(e.exception.code, "PERMISSION_DENIED", bad)
        self.g.call("CopyFile", {"path": "/run/kata-containers/copytest/esc", "file_size": 4,
                                 "file_mode": 0o120777, "data": "L2V0Yw=="})  # -> /etc
        with self.assertRaises(RpcError) as e:
            self.g.call("CopyFile", {"path": "/run/kata-containers/copytest/esc/evil", "file_size": 1,
                                     "file_mode": 0o100644, "data": "eA=="})
        self.assertEqual(e.exception.code, "PERMISSION_DENIED")
        out = self.g.guest_sh("ls /host/proc/1/root/etc/evil 2>&1 || true")
        self.assertIn("No such file", out)

    def test_7_update_ephemeral_mounts_and_stale_share_mounts(self):
        self.g.call("UpdateEphemeralMounts", {"storages": [
            {"driver": "ephemeral", "source": "shm", "fstype": "tmpfs", "mount_point": SHM,
             "options": ["noexec", "nosuid", "nodev", "mode=1777", f"size={16 * MiB}"]}]})
        line = [l for l in self.g.guest_sh("cat /host/proc/1/mountinfo").splitlines() if f" {SHM} " in l]
        self.assertEqual(len(line), 1, line)
        self.assertIn("size=16384k", line[0])
        with self.assertRaises(RpcError) as e:
            self.g.call("UpdateEphemeralMounts", {"storages": [
                {"driver": "local", "source": "local", "fstype": "local", "mount_point": LOCAL}]})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.g.call("RemoveStaleVirtiofsShareMounts", {})

    def test_8_refused_on_purpose(self):
        cases = [
            ({"storages": [{"driver": "watchable-bind", "source": "/x", "fstype": "bind",
                            "mount_point": "/run/kata-containers/w"}]}, "watchable-bind"),
            ({"shared_mounts": [{"name": "m", "src_ctr": "a", "src_path": "/x", "dst_ctr": "b",
                                 "dst_path": "/y"}]}, "shared_mounts"),
            ({"stdin_port": 2000}, "stdin_port"),
            ({"storages": [{"driver": "nosuch", "mount_point": "/run/kata-containers/n"}]}, "nosuch"),
        ]
        for extra, word in cases:
            req = container_request("refused", ["true"])
            req.update(extra)
            with self.assertRaises(RpcError) as e:
                self.g.call("CreateContainer", req)
            self.assertEqual(e.exception.code, "INVALID_ARGUMENT", word)
            self.assertIn(word, e.exception.message)
        status, _ = self.g.run("refused", ["true"])  # nothing was left behind
        self.assertEqual(status, 0)

    def test_9_destroy_sandbox(self):
        self.g.call("DestroySandbox")
        self.assertEqual(self.vm.wait_exit(timeout=60), 0)


if __name__ == "__main__":
    unittest.main()
