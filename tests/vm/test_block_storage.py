"""Block storage in a VM: disks found by PCI path (at boot and hot-plugged onto
pcie-root-ports while the request waits), SCSI addresses on virtio-scsi-pci, a container
rootfs on a virtio-blk ext4 image, a disk passed into a container as a device node, swap,
ResizeVolume, a PCI path that never appears, hot-unplug after the last user, and (-M
microvm) mmioblk on virtio-mmio. What containers write is read back from the host's image
files with debugfs after the guest powered off."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import RpcError  # noqa: E402
from katatest.storage_vm import StorageGuest, bind, debugfs_cat, make_ext4  # noqa: E402

MiB = 1 << 20
HOTPLUG_TIMEOUT = 5
MAGIC = b"KATA-RAW-DEVICE-MAGIC\n"
BUSYBOX_TREE = os.path.join(katatest.GUEST_DIR, "busybox-rootfs")
STORAGE_DIR = "/run/kata-containers/sandbox/storage"


def blk(source, mount_point, fstype="ext4", options=(), driver="blk"):
    return {"driver": driver, "source": source, "fstype": fstype, "mount_point": mount_point,
            "options": list(options)}


class BlockStorage(unittest.TestCase):
    """One q35 guest for the whole class; the tests run in name order and the last one
    destroys the sandbox."""

    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.INITRD_TEST)
        katatest.require_vsockd()
        if not os.path.isdir(BUSYBOX_TREE):
            raise unittest.SkipTest(f"{BUSYBOX_TREE} is missing: run `make guest` first")
        cls.tmp = tempfile.mkdtemp(prefix="kata-blk-")
        t = cls.tmp
        cls.boot_img = make_ext4(os.path.join(t, "boot.img"), {"hello.txt": "from the boot disk\n"})
        cls.hot_img = make_ext4(os.path.join(t, "hot.img"), {"hello.txt": "from the hot-plugged disk\n"})
        cls.scsi_img = make_ext4(os.path.join(t, "scsi.img"), {"hello.txt": "from the scsi disk\n"})
        cls.root_img = os.path.join(t, "rootfs.img")
        # The Kata layout: the image holds the bundle's rootfs/ directory.
        with tempfile.TemporaryDirectory(prefix="kata-bundle-") as d:
            shutil.copytree(BUSYBOX_TREE, os.path.join(d, "rootfs"), symlinks=True)
            make_ext4(cls.root_img, {}, size_mb=64, tree=d)
        cls.grow_img = make_ext4(os.path.join(t, "grow.img"), {"hello.txt": "grow me\n"}, size_mb=32)
        cls.raw_img = os.path.join(t, "raw.img")
        with open(cls.raw_img, "wb") as f:
            f.write(MAGIC)
            f.truncate(4 * MiB)
        cls.swap_img = os.path.join(t, "swap.img")
        with open(cls.swap_img, "wb") as f:
            f.truncate(16 * MiB)
        subprocess.run(["mkswap", cls.swap_img], check=True, capture_output=True)

        k = katatest.katavm()
        cls.vm = k.VM(initrd=katatest.INITRD_TEST, root_ports=6,
                      cmdline=["agent.log=debug", f"agent.hotplug_timeout={HOTPLUG_TIMEOUT}"],
                      disks=[{"path": cls.boot_img, "id": "boot"},
                             {"path": cls.scsi_img, "id": "scsi1", "driver": "scsi-hd", "scsi_id": 0, "lun": 1}])
        try:
            cls.vm.start()
            cls.g = StorageGuest(cls.vm)
            cls.g.wait_ready()
            cls.g.call("CreateSandbox", {"hostname": "blk", "sandbox_id": "blk"})
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
        # The console of a failed step, for the report.
        outcome = getattr(self, "_outcome", None)
        errors = getattr(getattr(outcome, "result", None), "errors", []) + \
            getattr(getattr(outcome, "result", None), "failures", [])
        if any(t is self for t, _ in errors):
            sys.stderr.write(f"---- guest console (tail) ----\n{self.vm.console_text()[-8000:]}\n")

    def port(self, i):
        return self.vm.pci_slot_of(f"rp{i}")

    def test_1_disk_at_boot_and_hotplugged_disk_found_by_pci_path(self):
        boot_path = f"{self.vm.pci_slot_of('boot'):02x}"
        hot_path = f"{self.port(0):02x}/00"
        storages = [blk(boot_path, f"{STORAGE_DIR}/boot"), blk(hot_path, f"{STORAGE_DIR}/hot")]
        script = ("cat /boot-disk/hello.txt /hot-disk/hello.txt; "
                  "echo written-by-container-1 > /boot-disk/out.txt; "
                  "echo written-by-container-2 > /hot-disk/out.txt")
        req = dict(mounts=[bind(f"{STORAGE_DIR}/boot", "/boot-disk"), bind(f"{STORAGE_DIR}/hot", "/hot-disk")],
                   storages=storages)
        # The hot-plugged disk is requested first and plugged while the agent waits for it.
        t0 = time.time()
        join = self.g.in_thread(self.g.call, "CreateContainer",
                                katatest.storage_vm.container_request("disks", ["/bin/sh", "-c", script], **req),
                                timeout=120)
        time.sleep(1.5)
        self.vm.hotplug_disk(self.hot_img, "hot", bus="rp0")
        join()
        waited = time.time() - t0
        status, out = self.g.start_and_collect("disks")
        self.g.remove("disks")
        self.assertEqual(status, 0, out)
        self.assertEqual(out, "from the boot disk\nfrom the hot-plugged disk\n")
        self.assertLess(waited, HOTPLUG_TIMEOUT * 2 + 30)
        mounts = self.g.guest_mounts()
        self.assertNotIn(f"{STORAGE_DIR}/boot", mounts, "unmounted by its last user")
        self.assertNotIn(f"{STORAGE_DIR}/hot", mounts)
        # What the container wrote is read on the host once the guest is gone (test_9).

    def test_2_container_rootfs_on_virtio_blk_then_unplugged(self):
        path = f"{self.port(1):02x}/00"
        self.vm.hotplug_disk(self.root_img, "rootdisk", bus="rp1")
        bundle = "/run/kata-containers/shared/containers/blkroot"
        status, out = self.g.run(
            "blkroot", ["/bin/sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo; echo rootfs-ok > /written; cat /written"],
            root=f"{bundle}/rootfs", root_readonly=False, storages=[blk(path, bundle)])
        self.assertEqual(status, 0, out)
        self.assertIn("rootfs-ok", out)
        m = re.search(r" - ext4 /dev/(vd[a-z]+) ", out)
        self.assertTrue(m, f"the root is not the ext4 disk: {out}")
        dev = m.group(1)
        self.assertNotIn(bundle, self.g.guest_mounts(), "RemoveContainer unmounted the disk")
        ev = self.vm.unplug_disk("rootdisk", timeout=60)
        self.assertEqual(ev["data"]["device"], "rootdisk")
        out = self.g.guest_sh(f"ls /host/dev/{dev} 2>&1; grep -c {dev} /host/proc/1/mountinfo || true")
        self.assertIn("No such file", out, "the device node is gone")
        self.assertTrue(out.strip().endswith("0"), out)
        self.assertIn("rootfs-ok", debugfs_cat(self.root_img, "/rootfs/written"))

    def test_3_pci_path_that_never_appears_is_deadline_exceeded(self):
        path = f"{self.port(3):02x}/00"  # an empty root port
        t0 = time.time()
        with self.assertRaises(RpcError) as e:
            self.g.call("CreateContainer", katatest.storage_vm.container_request(
                "never", ["true"], storages=[blk(path, f"{STORAGE_DIR}/never")]), timeout=120)
        took = time.time() - t0
        self.assertEqual(e.exception.code, "DEADLINE_EXCEEDED", e.exception.message)
        self.assertIn(path, e.exception.message)
        self.assertIn("PCI rescan", e.exception.message)
        self.assertGreaterEqual(took, HOTPLUG_TIMEOUT * 2 - 1)  # waited, rescanned, waited
        self.assertLess(took, 90)
        # Nothing was left behind: the id is free and the mount point unused.
        status, _ = self.g.run("never", ["true"])
        self.assertEqual(status, 0)

    def test_4_device_passed_into_a_container(self):
        path = f"{self.port(2):02x}/00"
        self.vm.hotplug_disk(self.raw_img, "rawdisk", bus="rp2")
        status, out = self.g.run(
            "devc", ["/bin/sh", "-c", f"head -c {len(MAGIC)} /dev/xdb; stat -c '%F %t:%T' /dev/xdb"],
            devices=[{"type": "blk", "id": path, "container_path": "/dev/xdb"}],
            linux_devices=[{"Path": "/dev/xdb", "Type": "b", "Major": 8, "Minor": 16, "FileMode": 0o660}])
        self.assertEqual(status, 0, out)
        self.assertTrue(out.startswith(MAGIC.decode()), out)
        kind, num = out[len(MAGIC):].strip().rsplit(" ", 1)
        self.assertEqual(kind, "block special file")
        guest = self.g.guest_sh("cat /host/proc/partitions")
        major, minor = (int(x, 16) for x in num.split(":"))
        self.assertNotEqual((major, minor), (8, 16), "the host's number was replaced")
        self.assertRegex(guest, rf"\b{major}\s+{minor}\s+\d+\s+vd[a-z]+\b")
        with self.assertRaises(RpcError) as e:
            self.g.call("CreateContainer", katatest.storage_vm.container_request(
                "vfio", ["true"], devices=[{"type": "vfio-pci", "id": "02/00", "container_path": "/dev/vfio/1"}]))
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("unsupported", e.exception.message)

    def test_5_scsi_disk_by_scsi_address_with_fs_group(self):
        storage = blk("0:1", f"{STORAGE_DIR}/scsi", driver="scsi")
        storage["fs_group"] = {"group_id": 3000, "group_change_policy": "OnRootMismatch"}
        status, out = self.g.run(
            "scsi", ["/bin/sh", "-c", "cat /scsi/hello.txt; stat -c '%g %a' /scsi /scsi/hello.txt"],
            mounts=[bind(f"{STORAGE_DIR}/scsi", "/scsi")], storages=[storage])
        self.assertEqual(status, 0, out)
        # fs_group: the volume's group, g+rw on files, g+rwx and setgid on directories.
        self.assertEqual(out, "from the scsi disk\n3000 2775\n3000 664\n")

    def test_6_add_swap_by_pci_path(self):
        slot = self.port(4)
        self.vm.hotplug_disk(self.swap_img, "swapdisk", bus="rp4")
        self.g.call("AddSwap", {"PCIPath": [slot, 0]}, timeout=60)
        swaps = self.g.guest_sh("cat /host/proc/swaps")
        self.assertRegex(swaps, r"/dev/vd[a-z]+\s+partition\s+16380", swaps)

    def test_7_resize_volume_after_block_resize(self):
        path = f"{self.port(5):02x}/00"
        self.vm.hotplug_disk(self.grow_img, "grow", bus="rp5")
        mp = f"{STORAGE_DIR}/grow"
        self.g.call("CreateContainer", katatest.storage_vm.container_request(
            "grower", ["sleep", "1000"], storages=[blk(path, mp)]), timeout=90)
        try:
            before = self.g.call("GetVolumeStats", {"volume_guest_path": mp})
            total_before = int(before["usage"][0]["total"])
            self.assertLess(total_before, 32 * MiB)
            self.vm.qmp.cmd("block_resize", **{"node-name": "grow", "size": 64 * MiB})
            self.g.call("ResizeVolume", {"volume_guest_path": mp, "size": 64 * MiB}, timeout=60)
            after = self.g.call("GetVolumeStats", {"volume_guest_path": mp})
            total_after = int(after["usage"][0]["total"])
            self.assertGreater(total_after, 48 * MiB, after)
            self.assertEqual(after["usage"][1]["unit"], "INODES")
            self.assertGreater(int(after["usage"][1]["total"]), int(before["usage"][1]["total"]))
            with self.assertRaises(RpcError) as e:
                self.g.call("ResizeVolume", {"volume_guest_path": mp, "size": 16 * MiB})
            self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        finally:
            self.g.remove("grower")

    def test_9_destroy_sandbox_and_read_the_images_on_the_host(self):
        self.g.call("DestroySandbox")
        self.assertEqual(self.vm.wait_exit(timeout=60), 0)
        self.assertEqual(debugfs_cat(self.boot_img, "/out.txt"), "written-by-container-1\n")
        self.assertEqual(debugfs_cat(self.hot_img, "/out.txt"), "written-by-container-2\n")


class MmioBlock(unittest.TestCase):
    def test_mmioblk_on_microvm(self):
        katatest.require_guest(katatest.INITRD_TEST)
        katatest.require_vsockd()
        tmp = tempfile.mkdtemp(prefix="kata-mmio-")
        self.addCleanup(shutil.rmtree, tmp, True)
        img = make_ext4(os.path.join(tmp, "mmio.img"), {"hello.txt": "from the mmio disk\n"})
        vm = katatest.katavm().VM(initrd=katatest.INITRD_TEST, machine="microvm",
                                  cmdline=["agent.log=debug"], disks=[{"path": img, "id": "mmio"}])
        self.addCleanup(vm.stop)
        vm.start()
        g = StorageGuest(vm)
        g.wait_ready()
        g.call("CreateSandbox", {"sandbox_id": "mmio"})
        status, out = g.run("mmio", ["/bin/sh", "-c", "cat /d/hello.txt; echo from-microvm > /d/out.txt"],
                            mounts=[bind(f"{STORAGE_DIR}/mmio", "/d")],
                            storages=[blk("/dev/vda", f"{STORAGE_DIR}/mmio", driver="mmioblk")])
        self.assertEqual(status, 0, out)
        self.assertEqual(out, "from the mmio disk\n")
        # A node the runtime expects that never comes: DEADLINE_EXCEEDED naming it.
        with self.assertRaises(RpcError) as e:
            g.call("CreateContainer", katatest.storage_vm.container_request(
                "mmio2", ["true"], storages=[blk("/dev/vdz", f"{STORAGE_DIR}/z", driver="mmioblk")]), timeout=60)
        self.assertEqual(e.exception.code, "DEADLINE_EXCEEDED")
        self.assertIn("/dev/vdz", e.exception.message)
        g.call("DestroySandbox")
        self.assertEqual(vm.wait_exit(timeout=60), 0)
        self.assertEqual(debugfs_cat(img, "/out.txt"), "from-microvm\n")


if __name__ == "__main__":
    unittest.main()
