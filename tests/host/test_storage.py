"""Storage on the host: the agent as root on a unix socket with its bundle base in a temp
dir. What needs no device runs here: ephemeral (tmpfs), local and overlayfs storages shared
by containers and released by the last one, validation of storages and devices, the fields
refused on purpose, CopyFile (its tree is the bundle base) and GetVolumeStats. Nothing here
waits for a device: a PCI or SCSI lookup would rescan the host's buses."""
import hashlib
import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent, RpcError  # noqa: E402
from katatest.containers import ContainerClient, build_rootfs, make_spec  # noqa: E402

MiB = 1 << 20


def bind(src, dst):
    return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rw"]}


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == path for l in f)


class HostStorage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        cls.agent = HostAgent(own_bundle_dir=True)
        cls.bundles = cls.agent.bundles
        cls.agent.__enter__()
        cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
        cls.c = ContainerClient(cls.agent.sock)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.agent.__exit__(None, None, None)

    def tmp(self, *parts):
        return os.path.join(self.agent.tmp, *parts)

    def create(self, cid, script, mounts=(), storages=(), devices=(), **extra):
        spec = make_spec(self.rootfs, ["/bin/sh", "-c", script], mounts=list(mounts))
        req = self.c.json_format.ParseDict({"container_id": cid, "OCI": spec, "storages": list(storages),
                                            "devices": list(devices), **extra},
                                           self.c.pb.CreateContainerRequest())
        return self.c.call("CreateContainer", req)

    def run_collect(self, cid):
        self.c.start(cid)
        out = self.c.read_all(cid)
        return self.c.wait(cid), out.decode()

    def test_ephemeral_and_local_refcounted_across_two_containers(self):
        eph, loc = self.tmp("vols", "eph"), self.tmp("vols", "local")
        storages = [
            {"driver": "ephemeral", "source": "tmpfs", "fstype": "tmpfs", "mount_point": eph,
             "options": ["size=1048576", "fsgid=4321"]},
            {"driver": "local", "source": "local", "fstype": "local", "mount_point": loc,
             "options": ["mode=0770", "fsgid=4321"]},
        ]
        mounts = [bind(eph, "/e"), bind(loc, "/l")]
        self.create("ra", "echo a > /e/a; echo a > /l/a", mounts, storages)
        self.assertEqual(self.run_collect("ra"), (0, ""))
        self.create("rb", "cat /e/a /l/a", mounts, storages)
        self.assertEqual(self.run_collect("rb"), (0, "a\na\n"))
        self.assertTrue(mounted(eph))
        st = os.stat(eph)
        self.assertEqual(st.st_gid, 4321)
        self.assertTrue(st.st_mode & stat.S_ISGID)
        st = os.stat(loc)
        self.assertEqual((st.st_gid, stat.S_IMODE(st.st_mode)), (4321, 0o2770))
        self.c.remove("ra")
        self.assertTrue(mounted(eph), "the first RemoveContainer keeps the volume")
        self.c.remove("rb")
        self.assertFalse(mounted(eph), "the second unmounts it")
        self.assertFalse(os.path.exists(eph), "and removes the mount point it made")
        self.assertTrue(os.path.exists(os.path.join(loc, "a")), "a local volume lives with the sandbox")

    def test_shared_ephemeral_stays_until_destroy(self):
        vol = self.tmp("vols", "shared-eph")
        s = {"driver": "ephemeral", "source": "tmpfs", "fstype": "tmpfs", "mount_point": vol, "shared": True}
        self.create("sh1", "true", storages=[s])
        self.assertEqual(self.run_collect("sh1")[0], 0)
        self.c.remove("sh1")
        self.assertTrue(mounted(vol), "shared: kept mounted for the next user")

    def test_overlay_storage_as_rootfs(self):
        mp = self.tmp("ovl", "rootfs")
        s = {"driver": "overlayfs", "source": "overlay", "fstype": "overlay", "mount_point": mp,
             "options": [f"lowerdir={self.rootfs}", "io.katacontainers.fs-opt.overlay-rw"]}
        spec = make_spec(mp, ["/bin/sh", "-c", "echo new > /made-in-overlay; cat /made-in-overlay"])
        req = self.c.json_format.ParseDict({"container_id": "ovl", "OCI": spec, "storages": [s]},
                                           self.c.pb.CreateContainerRequest())
        self.c.call("CreateContainer", req)
        self.assertEqual(self.run_collect("ovl"), (0, "new\n"))
        self.assertTrue(os.path.exists(os.path.join(self.bundles, "ovl", "upper", "made-in-overlay")))
        self.assertFalse(os.path.exists(os.path.join(self.rootfs, "made-in-overlay")))
        self.c.remove("ovl")
        self.assertFalse(mounted(mp))

    def test_a_failed_create_releases_its_storages(self):
        vol = self.tmp("vols", "failing")
        s = {"driver": "ephemeral", "source": "tmpfs", "fstype": "tmpfs", "mount_point": vol}
        with self.assertRaises(RpcError):
            self.create("bad", "true", storages=[s], mounts=[{"destination": "/x", "type": "nosuchfs",
                                                              "source": "none"}])
        self.assertFalse(mounted(vol))
        # A bad storage among good ones: nothing mounted.
        bad = {"driver": "blk", "source": "/dev/null", "fstype": "ext4", "mount_point": self.tmp("vols", "b")}
        with self.assertRaises(RpcError) as e:
            self.create("bad2", "true", storages=[s, bad])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("not a block device", e.exception.message)
        self.assertFalse(mounted(vol))

    def test_refused_fields_and_bad_storages(self):
        cases = [
            ({"storages": [{"driver": "watchable-bind", "source": "/x", "mount_point": "/run/w"}]}, "unsupported"),
            ({"storages": [{"driver": "nosuch", "mount_point": "/run/n"}]}, "unknown driver"),
            ({"storages": [{"driver": "local", "mount_point": "/run/a/../b"}]}, "mount_point"),
            ({"storages": [{"driver": "local", "mount_point": "relative"}]}, "mount_point"),
            ({"shared_mounts": [{"name": "x"}]}, "unsupported: shared_mounts"),
            ({"stdout_port": 1}, "unsupported: stdin_port"),
            ({"devices": [{"type": "vfio-pci", "id": "02/00", "container_path": "/dev/vfio/1"}]}, "unsupported: vfio"),
            ({"devices": [{"type": "blk", "id": "zz/00", "container_path": "/dev/x"}]}, "PCI path"),
            ({"devices": [{"type": "nvdimm", "id": "x", "container_path": "/dev/x"}]}, "unsupported device type"),
        ]
        for extra, words in cases:
            with self.subTest(words):
                with self.assertRaises(RpcError) as e:
                    self.create("refused", "true", **extra)
                self.assertEqual(e.exception.code, "INVALID_ARGUMENT", e.exception.message)
                self.assertIn(words, e.exception.message)

    def test_copy_file(self):
        data = os.urandom(3 * MiB + 123)
        path = os.path.join(self.bundles, "shared", "containers", "cf", "data.bin")
        for off in range(0, len(data), MiB):  # through python3-grpcio: 1 MiB is too big for argv
            self.c.call("CopyFile", self.c.pb.CopyFileRequest(
                path=path, file_size=len(data), file_mode=0o100604, dir_mode=0o711, uid=1000, gid=2000,
                offset=off, data=data[off:off + MiB]))
        with open(path, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (1000, 2000, 0o604))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o711)
        outside = self.tmp("outside")
        os.mkdir(outside)
        os.symlink(outside, os.path.join(self.bundles, "esc"))
        for bad in ("/etc/kata-evil", os.path.join(self.bundles, "..", "evil"),
                    os.path.join(self.bundles, "esc", "evil")):
            with self.assertRaises(RpcError) as e:
                self.agent.call("CopyFile", {"path": bad, "file_size": 1, "file_mode": 0o100644, "data": "eA=="})
            self.assertEqual(e.exception.code, "PERMISSION_DENIED", bad)
        self.assertEqual(os.listdir(outside), [])
        self.assertFalse(os.path.exists("/etc/kata-evil"))

    def test_volume_stats(self):
        r = self.agent.call("GetVolumeStats", {"volume_guest_path": self.agent.tmp})
        units = [u.get("unit") for u in r["usage"]]
        self.assertEqual(units, ["BYTES", "INODES"])
        sv = os.statvfs(self.agent.tmp)
        self.assertEqual(int(r["usage"][0]["total"]), sv.f_blocks * sv.f_bsize)
        self.assertEqual(r["volume_condition"]["message"], "OK")
        with self.assertRaises(RpcError) as e:
            self.agent.call("GetVolumeStats", {"volume_guest_path": self.tmp("nonexistent")})
        self.assertEqual(e.exception.code, "NOT_FOUND")
        with self.assertRaises(RpcError) as e:
            self.agent.call("ResizeVolume", {"volume_guest_path": self.agent.tmp, "size": 1})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")


if __name__ == "__main__":
    unittest.main()
