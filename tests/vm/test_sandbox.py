"""The sandbox lifecycle in a VM, replaying a pod as the Kata runtime builds it
(kata_agent.go): CreateSandbox with the virtio-fs share, the sandbox shm, the pod's dns,
hostname and guest hook path; a pause container and app containers whose specs carry the
runtime's bind mounts of /etc/hosts, /etc/hostname and /etc/resolv.conf from the shared
directory, /dev/shm from the sandbox shm, the Kata/CRI annotations, and the namespaces and
resources the runtime strips (no network, cgroup or time namespace, no namespace paths, no
device rules). Then: the pod's pid, ipc and uts namespaces shared, the guest hooks' state,
and DestroySandbox with a container still writing to a block volume."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import RpcError  # noqa: E402
from katatest.storage_vm import StorageGuest, debugfs_cat, make_ext4  # noqa: E402

MiB = 1 << 20
BUSYBOX_TREE = os.path.join(katatest.GUEST_DIR, "busybox-rootfs")
SHARE = "/run/kata-containers/shared/containers"
SHM = "/run/kata-containers/sandbox/shm"
VOLUMES = "/run/kata-containers/sandbox/storage"
SID = "5b1f0c3e9d2a4b7c"
HOSTNAME = "web-pod-0"
DNS = ["nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local",
       "options ndots:5"]
# containerd's default capability set.
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
HOOK_TYPES = ("createRuntime", "prestart", "createContainer", "startContainer", "poststart", "poststop")

# A SysV shared memory segment by key: "make KEY TEXT" creates and fills it (and leaves it),
# "read KEY" attaches it and prints its text. As PostgreSQL uses SysV shm.
SHM_PROBE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
int main(int argc, char** argv) {
  if (argc < 3) return 2;
  key_t key = (key_t)atoi(argv[2]);
  int make = strcmp(argv[1], "make") == 0;
  int id = shmget(key, 4096, make ? IPC_CREAT | IPC_EXCL | 0600 : 0);
  if (id < 0) { perror("shmget"); return 1; }
  char* p = shmat(id, NULL, 0);
  if (p == (void*)-1) { perror("shmat"); return 1; }
  if (make) strncpy(p, argc > 3 ? argv[3] : "", 4095);
  else printf("shm %d: %s\n", (int)key, p);
  shmdt(p);
  return 0;
}
"""


def kata_annotations(cid, ctype):
    # What containerd's CRI and the Kata runtime put on a pod's containers.
    a = {"io.kubernetes.cri.container-type": ctype,
         "io.kubernetes.cri.sandbox-id": SID,
         "io.kubernetes.cri.sandbox-name": HOSTNAME,
         "io.kubernetes.cri.sandbox-namespace": "default",
         "io.katacontainers.pkg.oci.bundle_path": f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}",
         "io.katacontainers.pkg.oci.container_type": "pod_sandbox" if ctype == "sandbox" else "pod_container"}
    if ctype == "container":
        a["io.kubernetes.cri.container-name"] = cid
    return a


def pod_spec(cid, args, ctype, extra_mounts=()):
    """An OCI spec after the Kata runtime's constrainGRPCSpec: hooks and the network, cgroup
    and time namespaces gone, every namespace path emptied, device rules, pids, blkio and
    cpus stripped; /dev/shm bound to the sandbox shm (handleShm); the shared files bound
    from the share as <id>-<random>-<name>."""
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/shm", "type": "bind", "source": SHM, "options": ["rbind"]},
    ]
    if ctype == "container":
        mounts += [
            {"destination": "/etc/hosts", "type": "bind", "source": f"{SHARE}/{cid}-a1b2c3d4-hosts",
             "options": ["rbind", "rprivate", "rw"]},
            {"destination": "/etc/hostname", "type": "bind", "source": f"{SHARE}/{cid}-e5f6a7b8-hostname",
             "options": ["rbind", "rprivate", "rw"]},
            {"destination": "/etc/resolv.conf", "type": "bind", "source": f"{SHARE}/{cid}-c9d0e1f2-resolv.conf",
             "options": ["rbind", "rprivate", "rw"]},
        ]
    mounts += list(extra_mounts)
    return {
        "Version": "1.1.0",
        "Process": {"User": {"UID": 0, "GID": 0}, "Args": list(args), "Cwd": "/",
                    "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"HOSTNAME={HOSTNAME}"],
                    "Capabilities": {"Bounding": CAPS, "Effective": CAPS, "Permitted": CAPS},
                    "NoNewPrivileges": True, "OOMScoreAdj": -998 if ctype == "sandbox" else 1000},
        "Root": {"Path": f"{SHARE}/{cid}/rootfs", "Readonly": ctype == "sandbox"},
        "Hostname": HOSTNAME,
        "Mounts": mounts,
        "Annotations": kata_annotations(cid, ctype),
        "Linux": {
            "Resources": {"Memory": {"Limit": 64 * MiB}, "CPU": {"Shares": 2 if ctype == "sandbox" else 102}},
            "CgroupsPath": f"kubepods-besteffort-pod{SID}.slice:cri-containerd:{cid}",
            "Namespaces": [{"Type": "pid"}, {"Type": "ipc"}, {"Type": "uts"}, {"Type": "mount"}],
            "MaskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
            "ReadonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def create_request(cid, args, ctype, storages=(), extra_mounts=()):
    return {"container_id": cid, "exec_id": cid, "sandbox_pidns": True, "storages": list(storages),
            "OCI": pod_spec(cid, args, ctype, extra_mounts)}


class SandboxLifecycle(unittest.TestCase):
    """One q35 guest; tests run in name order, the last destroys the sandbox."""

    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.INITRD_TEST)
        katatest.require_vsockd()
        k = katatest.katavm()
        if not os.path.exists(k.VIRTIOFSD):
            raise RuntimeError(f"{k.VIRTIOFSD} is missing (qemu-system-common)")
        if not os.path.isdir(BUSYBOX_TREE):
            raise unittest.SkipTest(f"{BUSYBOX_TREE} is missing: run `make guest` first")
        cls.tmp = tempfile.mkdtemp(prefix="kata-sandbox-")
        cls.share = os.path.join(cls.tmp, "share")
        os.makedirs(cls.share)
        cls._host_files()
        cls.vol_img = make_ext4(os.path.join(cls.tmp, "vol.img"), {"hello.txt": "volume\n"})
        cls.vm = k.VM(initrd=katatest.INITRD_TEST, cmdline=["agent.log=debug"],
                      virtiofs=(cls.share, "kataShared"), disks=[{"path": cls.vol_img, "id": "vol"}])
        try:
            cls.vm.start()
            cls.g = StorageGuest(cls.vm)
            cls.g.wait_ready()
            req = {"hostname": HOSTNAME, "sandbox_id": SID, "dns": DNS, "sandbox_pidns": True,
                   "guest_hook_path": f"{SHARE}/hooks",
                   "storages": [
                       {"driver": "virtio-fs", "source": "kataShared", "fstype": "virtiofs",
                        "mount_point": SHARE + "/", "options": []},
                       {"driver": "ephemeral", "source": "shm", "fstype": "tmpfs", "mount_point": SHM,
                        "options": ["noexec", "nosuid", "nodev", "mode=1777", f"size={8 * MiB}"]}]}
            # A module our kernel (no loadable modules) cannot have: refused, nothing kept.
            cls.kmod_error = cls.g.call("CreateSandbox", dict(req, kernel_modules=[
                {"name": "dummy", "parameters": ["numdummies=2"]}]), check=False)
            t0 = time.monotonic()
            cls.g.call("CreateSandbox", req)
            cls.create_sandbox_s = time.monotonic() - t0
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _host_files(cls):
        s = cls.share
        probe_src = os.path.join(cls.tmp, "shm-probe.c")
        with open(probe_src, "w") as f:
            f.write(SHM_PROBE_C)
        for cid in ("pause", "app", "writer"):
            root = os.path.join(s, cid, "rootfs")
            shutil.copytree(BUSYBOX_TREE, root, symlinks=True)
            subprocess.run(["gcc", "-static", "-O1", "-o", os.path.join(root, "bin", "shm-probe"), probe_src],
                           check=True, capture_output=True)
            # The runtime's copies of the pod's files, one set per container.
            with open(os.path.join(s, f"{cid}-a1b2c3d4-hosts"), "w") as f:
                f.write(f"127.0.0.1\tlocalhost\n10.244.0.7\t{HOSTNAME}\n")
            with open(os.path.join(s, f"{cid}-e5f6a7b8-hostname"), "w") as f:
                f.write(HOSTNAME + "\n")
            with open(os.path.join(s, f"{cid}-c9d0e1f2-resolv.conf"), "w") as f:
                f.write("nameserver 192.0.2.1\n")  # the host's own: the sandbox's dns wins
        out = os.path.join(s, "hooks-out")
        os.makedirs(out)
        for t in HOOK_TYPES:
            d = os.path.join(s, "hooks", t)
            os.makedirs(d)
            # argv: {file name, hook type} ($1 of a script); empty environment; the state on stdin.
            script = f"#!/bin/sh\n/bin/cat >> {SHARE}/hooks-out/$1.jsonl\necho >> {SHARE}/hooks-out/$1.jsonl\n"
            with open(os.path.join(d, "record"), "w") as f:
                f.write(script)
            os.chmod(os.path.join(d, "record"), 0o755)
            with open(os.path.join(d, "not-executable"), "w") as f:
                f.write("#!/bin/sh\nexit 1\n")
            os.symlink("/bin/false", os.path.join(d, "a-symlink"))

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

    def hook_states(self, kind):
        path = os.path.join(self.share, "hooks-out", f"{kind}.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_0_kernel_module_without_modules_is_failed_precondition(self):
        e = self.kmod_error
        self.assertEqual(e.get("_error"), "FAILED_PRECONDITION", e)
        self.assertIn("/lib/modules", e["_message"])
        self.assertIn("dummy", e["_message"])

    def test_1_second_create_sandbox_is_already_exists(self):
        with self.assertRaises(RpcError) as e:
            self.g.call("CreateSandbox", {"hostname": "other", "sandbox_id": "other"})
        self.assertEqual(e.exception.code, "ALREADY_EXISTS")
        self.assertIn(SID, e.exception.message)

    def test_2_pod_shares_pid_ipc_uts_and_the_dns(self):
        # The pause container: the sandbox's first, its pid namespace the pod's. It makes a
        # SysV segment, then sleeps (as the pause process, pid 1 of the pod).
        self.g.call("CreateContainer", create_request(
            "pause", ["/bin/sh", "-c", "shm-probe make 4242 made-by-pause && exec sleep 3600"], "sandbox"))
        self.g.call("StartContainer", {"container_id": "pause"})
        # The app container, in the pod's namespaces.
        script = ("until ps | grep -q 'sleep 3600'; do sleep 0.1; done; "
                  "ps; echo; shm-probe read 4242; echo hostname=$(hostname); "
                  "echo uts=$(readlink /proc/self/ns/uts) ipc=$(readlink /proc/self/ns/ipc); "
                  "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo ---resolv; cat /etc/resolv.conf; "
                  "echo ---hosts; cat /etc/hosts; echo ---etc-hostname; cat /etc/hostname")
        self.g.call("CreateContainer", create_request("app", ["/bin/sh", "-c", script], "container"))
        status, out = self.g.start_and_collect("app")
        self.assertEqual(status, 0, out)
        # ps in the second lists the first's processes: the pause container's sleep is pid 1.
        self.assertRegex(out.split("\n\n")[0], r"\n\s*1 \S+ .*sleep 3600")
        self.assertIn("\nsleep 3600 \n", out, "pid 1 of the app's pid namespace is the pause's sleep")
        # A SysV segment made in one container is attached in the other.
        self.assertIn("shm 4242: made-by-pause", out)
        self.assertIn(f"hostname={HOSTNAME}", out)
        resolv = out.split("---resolv\n")[1].split("---hosts")[0]
        self.assertEqual(resolv, "".join(line + "\n" for line in DNS))
        self.assertIn(f"10.244.0.7\t{HOSTNAME}", out.split("---hosts\n")[1])
        self.assertEqual(out.split("---etc-hostname\n")[1], HOSTNAME + "\n")
        # A later container with a hostname of its own ("storage-test") joins the pod's ipc
        # namespace but keeps a uts namespace of its own: the pod is never renamed.
        ns_line = [line for line in out.splitlines() if line.startswith("uts=")][0]
        status2, out2 = self.g.run("peek", ["/bin/sh", "-c",
                                            "echo uts=$(readlink /proc/self/ns/uts) ipc=$(readlink /proc/self/ns/ipc);"
                                            " hostname; shm-probe read 4242 || ipcs -m"],
                                   root=f"{SHARE}/app/rootfs")
        self.assertEqual(status2, 0, out2)
        uts, ipc = ns_line.split()
        self.assertNotEqual(out2.splitlines()[0].split()[0], uts)
        self.assertEqual(out2.splitlines()[0].split()[1], ipc)
        self.assertEqual(out2.splitlines()[1], "storage-test")
        self.assertIn("shm 4242: made-by-pause", out2)
        self.g.remove("app")

    def test_3_guest_hooks_get_the_state(self):
        for kind in ("createRuntime", "prestart", "createContainer", "startContainer"):
            states = {s["id"]: s for s in self.hook_states(kind)}
            self.assertIn("pause", states, kind)
            st = states["app"]
            self.assertEqual(st["status"], "created")
            self.assertGreater(st["pid"], 1)
            self.assertEqual(st["bundle"], "/run/kata-containers/app")
            self.assertEqual(st["annotations"]["io.kubernetes.cri.container-type"], "container")
            self.assertEqual(st["annotations"]["io.kubernetes.cri.sandbox-id"], SID)
        post = {s["id"]: s for s in self.hook_states("poststart")}
        self.assertEqual(post["pause"]["status"], "running")
        stop = {s["id"]: s for s in self.hook_states("poststop")}
        self.assertEqual(stop["app"]["status"], "stopped")
        self.assertNotIn("pid", stop["app"])
        self.assertNotIn("pause", stop, "the pause container is still there")

    def test_9_destroy_sandbox_with_a_container_writing_to_a_block_volume(self):
        vol = f"{VOLUMES}/vol"
        storage = {"driver": "blk", "source": f"{self.vm.pci_slot_of('vol'):02x}", "fstype": "ext4",
                   "mount_point": vol, "options": []}
        vol_mount = [{"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "rw"]}]
        # It ignores SIGTERM, so DestroySandbox waits the grace period, then SIGKILLs it.
        writer = ("trap '' TERM; i=0; while true; do i=$((i+1)); echo line-$i >> /vol/log.txt; "
                  "[ $i = 200 ] && touch /vol/started; done")
        req = create_request("writer", ["/bin/sh", "-c", writer], "container", storages=[storage],
                             extra_mounts=vol_mount)
        req["sandbox_pidns"] = False  # its own pid namespace: the pause's end does not end it
        self.g.call("CreateContainer", req)
        self.g.call("StartContainer", {"container_id": "writer"})
        # Another user of the same volume waits until the writer is well under way.
        status, out = self.g.run("waiter", ["/bin/sh", "-c", "until [ -e /vol/started ]; do sleep 0.05; done"],
                                 root=f"{SHARE}/app/rootfs", storages=[storage], mounts=vol_mount, root_readonly=False)
        self.assertEqual(status, 0, out)
        t0 = time.monotonic()
        self.g.call("DestroySandbox", timeout=60)
        destroy_s = time.monotonic() - t0
        self.assertEqual(self.vm.wait_exit(timeout=60), 0)
        log = debugfs_cat(self.vol_img, "/log.txt")
        lines = log.splitlines()
        self.assertGreater(len(lines), 200, log[-200:])
        # Every line complete and in order: the writer was killed, then the volume
        # unmounted and synced before the power-off.
        self.assertEqual(lines, [f"line-{i}" for i in range(1, len(lines) + 1)])
        self.assertGreaterEqual(destroy_s, 5, "SIGTERM's grace period before SIGKILL")
        stop = {s["id"] for s in self.hook_states("poststop")}
        self.assertTrue({"pause", "writer"} <= stop, stop)
        sys.stderr.write(f"\nCreateSandbox {self.create_sandbox_s:.2f} s, DestroySandbox {destroy_s:.2f} s "
                         f"({len(lines)} lines written)\n")


if __name__ == "__main__":
    unittest.main()
