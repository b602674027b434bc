"""The bad-input matrix: the agent as root on a unix socket, fed malformed requests and
malformed connections. Each is answered with the stated status code (or the connection is
closed), and after each the agent still serves: a Check on a new connection works, its fd
count is back to what it was before the input, and it has no zombie children.

Needs root (the containers made on the way create namespaces and mounts)."""
import os
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent, RpcError, count_fds, zombies_of  # noqa: E402
from katatest.containers import ContainerClient, build_rootfs, make_spec  # noqa: E402
from test_ttrpc import RawTtrpc  # noqa: E402

MiB = 1 << 20
SNIFF_TIMEOUT_S = 1
# google.rpc.Code
OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED = 0, 3, 8


def ttrpc_conn(path, timeout=10):
    """A raw ttrpc connection; waits while the agent's listen backlog is full (a unix
    socket connect with a timeout fails with EAGAIN then)."""
    deadline = time.time() + 30
    while True:
        try:
            return RawTtrpc(path, timeout)
        except BlockingIOError:
            if time.time() > deadline:
                raise
            time.sleep(0.01)


def check(conn, sid):
    conn.call(sid, "grpc.Health", "Check")
    return conn.response()


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        # 1000 client sockets here and 1000 accepted ones in the agent (which inherits it).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 <= hard or hard == resource.RLIM_INFINITY:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
        cls.agent = HostAgent(extra_args=["--bundle-dir", "", "--sniff-timeout", str(SNIFF_TIMEOUT_S)])
        cls.bundles = os.path.join(cls.agent.tmp, "bundles")
        cls.agent.extra_args[1] = cls.bundles
        cls.agent.__enter__()
        try:
            cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
            cls.c = ContainerClient(cls.agent.sock)
            # Warm-up, so that what the agent keeps for good is in the baseline: the gRPC
            # channel, the sandbox's pid namespace (kept from the first container on).
            code, _, err = cls.c.run("warmup", make_spec(cls.rootfs, ["/bin/true"]))
            if code != 0:
                raise RuntimeError(f"the warm-up container failed ({code}): {err}")
            t = ttrpc_conn(cls.agent.sock)
            check(t, 1)
            t.close()
            time.sleep(0.3)
            cls.baseline_fds = count_fds(cls.agent.pid())
        except Exception:
            cls.agent.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.agent.__exit__(None, None, None)

    def tearDown(self):
        self.assertStillServing()

    # ---- helpers ----

    def assertStillServing(self):
        self.assertIsNone(self.agent.proc.poll(), "the agent died: " + self.agent.log()[-3000:])
        t = ttrpc_conn(self.agent.sock)
        try:
            sid, code, msg, payload = check(t, 1)
        finally:
            t.close()
        self.assertEqual((sid, code, payload), (1, OK, b"\x08\x01"), msg)
        pid = self.agent.pid()
        deadline = time.time() + 10
        while time.time() < deadline and count_fds(pid) > self.baseline_fds:
            time.sleep(0.05)
        self.assertLessEqual(count_fds(pid), self.baseline_fds,
                             "fds of the agent: " + " ".join(sorted(
                                 os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd"))))
        deadline = time.time() + 5
        while time.time() < deadline and zombies_of(pid):
            time.sleep(0.05)
        self.assertEqual(zombies_of(pid), [])

    def assertCode(self, code, method, request, timeout=None):
        try:
            self.c.call(method, request, timeout)
        except RpcError as e:
            self.assertEqual(e.code, code, e.message)
            return e.message
        if method == "CreateContainer":  # accepted by mistake: do not leave it behind
            self.c.remove(request.container_id)
        self.fail(f"{method} was accepted, expected {code}")

    def create_req(self, cid, spec):
        return self.c.json_format.ParseDict({"container_id": cid, "OCI": spec}, self.c.pb.CreateContainerRequest())

    def spec(self, args=("/bin/true",), **kw):
        return make_spec(self.rootfs, list(args), **kw)

    # ---- ids ----

    def test_unknown_ids_are_not_found(self):
        pb = self.c.pb
        for method, req in [
            ("StartContainer", pb.StartContainerRequest(container_id="nosuch")),
            ("RemoveContainer", pb.RemoveContainerRequest(container_id="nosuch")),
            ("WaitProcess", pb.WaitProcessRequest(container_id="nosuch")),
            ("SignalProcess", pb.SignalProcessRequest(container_id="nosuch", signal=9)),
            ("ReadStdout", pb.ReadStreamRequest(container_id="nosuch", len=10)),
            ("WriteStdin", pb.WriteStreamRequest(container_id="nosuch", data=b"x")),
            ("CloseStdin", pb.CloseStdinRequest(container_id="nosuch")),
            ("StatsContainer", pb.StatsContainerRequest(container_id="nosuch")),
        ]:
            with self.subTest(method=method):
                self.assertCode("NOT_FOUND", method, req)

    def test_duplicate_id_is_already_exists(self):
        self.c.create("dup", self.spec())
        try:
            self.assertCode("ALREADY_EXISTS", "CreateContainer", self.create_req("dup", self.spec()))
        finally:
            self.c.remove("dup")
        self.assertFalse(os.path.exists(os.path.join(self.bundles, "dup")))

    def test_malformed_ids_are_invalid_argument(self):
        before = set(os.listdir(self.agent.tmp))
        for cid in ["", "a" * 10240, "../escape", "a/b", "/abs", "..", ".", "a/../../escape"]:
            with self.subTest(cid=cid[:20]):
                self.assertCode("INVALID_ARGUMENT", "CreateContainer", self.create_req(cid, self.spec()))
                self.assertCode("INVALID_ARGUMENT", "StartContainer", self.c.pb.StartContainerRequest(container_id=cid))
                self.assertCode("INVALID_ARGUMENT", "ExecProcess", self.c.json_format.ParseDict(
                    {"container_id": cid, "exec_id": "e1", "process": {"Args": ["/bin/true"], "Cwd": "/"}},
                    self.c.pb.ExecProcessRequest()))
        # Nothing was made beside the bundle base.
        self.assertEqual(set(os.listdir(self.agent.tmp)) - before, set())
        self.assertFalse(os.path.exists(os.path.join(self.agent.tmp, "escape")))

    # ---- specs ----

    def test_spec_without_process_is_invalid_argument(self):
        spec = self.spec()
        del spec["Process"]
        self.assertIn("process", self.assertCode("INVALID_ARGUMENT", "CreateContainer", self.create_req("noproc", spec)))

    def test_empty_args_are_invalid_argument(self):
        self.assertIn("args", self.assertCode("INVALID_ARGUMENT", "CreateContainer",
                                              self.create_req("noargs", self.spec(args=()))))

    def test_3mib_environment_is_invalid_argument(self):
        # Under the 4 MiB message cap, over what execve(2) takes (ARG_MAX: a quarter of the
        # 8 MiB stack limit): refused when the spec is checked, not at exec.
        env = ["PATH=/bin"] + [f"V{i}=" + "x" * (60 * 1024) for i in range(52)]
        req = self.create_req("bigenv", self.spec(env=env))
        self.assertGreater(req.ByteSize(), 3 * MiB)
        self.assertLess(req.ByteSize(), 4 * MiB)
        try:
            self.assertCode("INVALID_ARGUMENT", "CreateContainer", req)
        finally:
            try:
                self.c.remove("bigenv")
            except RpcError:
                pass

    def test_unknown_rlimit_is_invalid_argument(self):
        spec = self.spec()
        spec["Process"]["Rlimits"] = [{"Type": "RLIMIT_BOGUS", "Hard": 1, "Soft": 1}]
        self.assertIn("RLIMIT_BOGUS", self.assertCode("INVALID_ARGUMENT", "CreateContainer",
                                                      self.create_req("rlim", spec)))

    def test_unknown_seccomp_action_is_invalid_argument(self):
        spec = self.spec()
        spec["Linux"]["Seccomp"] = {"DefaultAction": "SCMP_ACT_ALLOW", "Architectures": ["SCMP_ARCH_X86_64"],
                                    "Syscalls": [{"Names": ["getpid"], "Action": "SCMP_ACT_BOGUS"}]}
        self.assertIn("SCMP_ACT_BOGUS", self.assertCode("INVALID_ARGUMENT", "CreateContainer",
                                                        self.create_req("seccomp", spec)))

    def test_relative_and_escaping_mount_destinations_are_invalid_argument(self):
        for i, dest in enumerate(["data", "./data", "/../../etc", "/a/../../etc/passwd"]):
            with self.subTest(dest=dest):
                spec = self.spec(mounts=[{"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": []}])
                msg = self.assertCode("INVALID_ARGUMENT", "CreateContainer", self.create_req(f"mnt{i}", spec))
                self.assertIn("mounts", msg)

    def test_rootfs_symlinks_pointing_outside_stay_inside(self):
        # The container's own symlinks name host paths (absolute, and relative with more
        # ".." than the rootfs is deep). A mount through them lands inside the rootfs.
        host_dir = os.path.join(self.agent.tmp, "host-side")
        os.makedirs(host_dir)
        os.symlink(host_dir, os.path.join(self.rootfs, "abs-link"))
        os.symlink("../" * 12 + host_dir.lstrip("/"), os.path.join(self.rootfs, "rel-link"))
        try:
            mounts = [{"destination": "/abs-link/m1", "type": "tmpfs", "source": "tmpfs", "options": []},
                      {"destination": "/rel-link/m2", "type": "tmpfs", "source": "tmpfs", "options": []}]
            code, out, err = self.c.run("symlinks", self.spec(
                ["/bin/sh", "-c", f"grep -c ' {host_dir}/m[12] ' /proc/self/mountinfo"], mounts=mounts))
            self.assertEqual((code, out.strip()), (0, b"2"), err)
            self.assertEqual(os.listdir(host_dir), [])
            inside = os.path.join(self.rootfs, host_dir.lstrip("/"))
            self.assertEqual(sorted(os.listdir(inside)), ["m1", "m2"])
            with open("/proc/self/mountinfo") as f:
                self.assertNotIn(host_dir + "/m", f.read())
        finally:
            os.unlink(os.path.join(self.rootfs, "abs-link"))
            os.unlink(os.path.join(self.rootfs, "rel-link"))

    def test_copy_file_outside_the_tree_is_permission_denied(self):
        outside = os.path.join(self.agent.tmp, "outside")
        os.makedirs(outside)
        os.makedirs(self.bundles, exist_ok=True)
        os.symlink(outside, os.path.join(self.bundles, "esc"))
        try:
            for path in ["/etc/kata-bad-input", os.path.join(self.bundles, "..", "outside", "f"),
                         os.path.join(self.bundles, "esc", "f"), self.bundles]:
                with self.subTest(path=path):
                    self.assertCode("PERMISSION_DENIED", "CopyFile", self.c.pb.CopyFileRequest(
                        path=path, file_size=1, file_mode=0o100644, data=b"x"))
            self.assertEqual(os.listdir(outside), [])
            self.assertFalse(os.path.exists("/etc/kata-bad-input"))
        finally:
            os.unlink(os.path.join(self.bundles, "esc"))

    # ---- connections ----

    def test_5mib_ttrpc_frame_is_resource_exhausted_and_the_connection_kept(self):
        t = ttrpc_conn(self.agent.sock, timeout=30)
        try:
            t.send(RawTtrpc.frame(1, 1, b"\0" * (5 * MiB)))
            sid, code, msg, _ = t.response()
            self.assertEqual((sid, code), (1, RESOURCE_EXHAUSTED), msg)
            self.assertEqual(check(t, 3)[:2], (3, OK))
        finally:
            t.close()

    def test_5mib_grpc_message_is_resource_exhausted(self):
        req = self.c.pb.CopyFileRequest(path=os.path.join(self.bundles, "big"), file_size=5 * MiB,
                                        file_mode=0o100644, data=b"x" * (5 * MiB))
        self.assertCode("RESOURCE_EXHAUSTED", "CopyFile", req)
        self.assertFalse(os.path.exists(os.path.join(self.bundles, "big")))

    def test_garbage_bytes_close_the_connection(self):
        rnd = os.urandom(64 * 1024)
        for first in (b"G", b"\xff", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\0"):
            with self.subTest(first=first[:4]):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.agent.sock)
                    try:
                        s.sendall(first + rnd)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # closed while we were still writing
                    if first != b"\0":
                        s.settimeout(10)
                        try:
                            while s.recv(65536):
                                pass
                        except ConnectionResetError:
                            pass
                finally:
                    s.close()

    def test_half_frame_then_close(self):
        t = ttrpc_conn(self.agent.sock)
        whole = RawTtrpc.frame(1, 1, t.request_bytes("grpc.Health", "Check"))
        t.send(whole[:len(whole) // 2])
        time.sleep(0.1)
        t.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.agent.sock)
        s.sendall(b"PRI * HTTP/2.0\r\n")  # half a gRPC preface
        s.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.agent.sock)
        s.sendall(b"\0\0")  # half a ttrpc header
        s.close()

    def test_silent_connections_are_closed_after_the_sniff_timeout(self):
        conns = [ttrpc_conn(self.agent.sock) for _ in range(20)]
        try:
            for t in conns:
                self.assertTrue(t.closed_by_peer(timeout=SNIFF_TIMEOUT_S + 10))
        finally:
            for t in conns:
                t.close()

    def test_1000_connections_idle_past_the_sniff_timeout_keep_working(self):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            self.skipTest(f"RLIMIT_NOFILE is {soft} and cannot be raised: 1000 connections need more")
        conns = []
        try:
            for i in range(1000):
                conns.append(ttrpc_conn(self.agent.sock, timeout=30))
            for t in conns:
                t.call(1, "grpc.Health", "Check")
            for t in conns:
                self.assertEqual(t.response()[:2], (1, OK))
            time.sleep(SNIFF_TIMEOUT_S + 1.5)
            for t in conns:
                t.call(3, "grpc.Health", "Check")
            for t in conns:
                self.assertEqual(t.response()[:2], (3, OK))
        finally:
            for t in conns:
                t.close()


if __name__ == "__main__":
    unittest.main()
