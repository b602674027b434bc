"""ttrpc beside gRPC on the agent's one socket.

- interop with an independent implementation: a client built on containerd's own ttrpc Go
  library (Debian's golang-github-containerd-ttrpc-dev, tests/host/ttrpc-go), compared
  with the answers gRPC (python3-grpcio) gives;
- concurrency: 50 calls on one ttrpc connection complete while GetOOMEvent long-polls
  until its deadline;
- containerd's answers to malformed input, sent from raw sockets;
- agent-ctl's ttrpc transport.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import json

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent, RpcError  # noqa: E402

GO_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ttrpc-go")
GO_OUT = os.path.join(katatest.BUILD_DIR, "ttrpc-go")
GO_BIN = os.path.join(GO_OUT, "ttrpc-interop")

# google.rpc.Code
OK, CANCELLED, INVALID_ARGUMENT, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED = 0, 1, 3, 4, 8, 12
MAX_MESSAGE = 4 << 20


def build_go_client():
    """Builds the Go interop client into the build dir (GOPATH mode, Debian's Go packages).
    Returns its path; skips the caller when Go or the library is missing."""
    go = shutil.which("go")
    if go is None:
        raise unittest.SkipTest("golang-go is not installed: the ttrpc interop client cannot be built")
    if not os.path.isdir("/usr/share/gocode/src/github.com/containerd/ttrpc"):
        raise unittest.SkipTest("golang-github-containerd-ttrpc-dev is not installed")
    src = os.path.join(GO_SRC, "main.go")
    if os.path.exists(GO_BIN) and os.path.getmtime(GO_BIN) >= os.path.getmtime(src):
        return GO_BIN
    os.makedirs(GO_OUT, exist_ok=True)
    gopath = tempfile.mkdtemp(prefix="kata-gopath-")
    try:
        env = dict(os.environ, GO111MODULE="off", GOPATH=gopath + ":/usr/share/gocode",
                   GOCACHE=os.path.join(GO_OUT, "cache"), GOFLAGS="", CGO_ENABLED="0")
        tmp_bin = GO_BIN + ".tmp"
        p = subprocess.run([go, "build", "-o", tmp_bin, "."], cwd=GO_SRC, env=env,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("building the Go ttrpc client failed:\n" + p.stderr)
        os.replace(tmp_bin, GO_BIN)
    finally:
        shutil.rmtree(gopath, ignore_errors=True)
    return GO_BIN


def go_client(sock, *args, timeout=60):
    p = subprocess.run([GO_BIN, "-sock", sock] + list(args), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"ttrpc-interop {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout)


def ttrpc_modules():
    if katatest.PY_PROTO_DIR not in sys.path:
        sys.path.insert(0, katatest.PY_PROTO_DIR)
    import ttrpc_pb2  # noqa: E401
    return ttrpc_pb2


class RawTtrpc:
    """A ttrpc connection driven by hand, byte by byte if need be."""

    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.pb = ttrpc_modules()

    @staticmethod
    def frame(sid, typ, payload, flags=0, length=None):
        return struct.pack(">IIBB", len(payload) if length is None else length, sid, typ, flags) + payload

    def request_bytes(self, service, method, payload=b"", timeout_nano=0):
        return self.pb.Request(service=service, method=method, payload=payload,
                               timeout_nano=timeout_nano).SerializeToString()

    def send(self, data):
        self.s.sendall(data)

    def call(self, sid, service, method, payload=b"", timeout_nano=0):
        self.send(self.frame(sid, 1, self.request_bytes(service, method, payload, timeout_nano)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the agent")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """(stream id, code, message, payload) of the next frame, which must be a response."""
        length, sid, typ, _flags = struct.unpack(">IIBB", self._read(10))
        body = self._read(length)
        if typ != 2:
            raise AssertionError(f"frame type {typ}, expected a response (2)")
        r = self.pb.Response()
        r.ParseFromString(body)
        return sid, r.status.code, r.status.message, r.payload

    def closed_by_peer(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


class TtrpcInterop(unittest.TestCase):
    """containerd's ttrpc Go client against the agent, compared with gRPC."""

    @classmethod
    def setUpClass(cls):
        build_go_client()
        cls.agent = HostAgent().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.agent.__exit__(None, None, None)

    def grpc_stubs(self):
        import grpc
        agent_pb2, agent_pb2_grpc, health_pb2, health_pb2_grpc = katatest.python_grpc_modules()
        ch = grpc.insecure_channel("unix:" + self.agent.sock)
        self.addCleanup(ch.close)
        return agent_pb2, agent_pb2_grpc.AgentServiceStub(ch), health_pb2, health_pb2_grpc.HealthStub(ch)

    def test_check_same_as_grpc(self):
        _, _, health_pb2, health = self.grpc_stubs()
        g = health.Check(health_pb2.CheckRequest(), timeout=10)
        t = go_client(self.agent.sock, "check")
        self.assertEqual(t["status"], g.status)
        self.assertEqual(t["status"], health_pb2.HealthCheckResponse.SERVING)

    def test_version_same_as_grpc(self):
        _, _, health_pb2, health = self.grpc_stubs()
        g = health.Version(health_pb2.CheckRequest(), timeout=10)
        t = go_client(self.agent.sock, "version")
        self.assertEqual(t["agent_version"], g.agent_version)
        self.assertEqual(t["grpc_version"], g.grpc_version)

    def test_guest_details_same_as_grpc(self):
        agent_pb2, agent, _, _ = self.grpc_stubs()
        req = agent_pb2.GuestDetailsRequest(mem_block_size=True)
        g = agent.GetGuestDetails(req, timeout=10)
        t = go_client(self.agent.sock, "guest-details")
        self.assertGreater(t["mem_block_size_bytes"], 0)
        self.assertEqual(t["mem_block_size_bytes"], g.mem_block_size_bytes)
        self.assertEqual(t["support_mem_hotplug_probe"], g.support_mem_hotplug_probe)
        d = t["agent_details"]
        self.assertEqual(d["version"], g.agent_details.version)
        self.assertEqual(d["init_daemon"], g.agent_details.init_daemon)
        self.assertEqual(d["supports_seccomp"], g.agent_details.supports_seccomp)
        self.assertEqual(d["device_handlers"] or [], list(g.agent_details.device_handlers))
        self.assertEqual(d["storage_handlers"] or [], list(g.agent_details.storage_handlers))
        self.assertEqual(d["extra_features"] or [], list(g.agent_details.extra_features))
        # And byte for byte: the same request gives the same serialized response.
        raw = go_client(self.agent.sock, "call", "-service", "grpc.AgentService", "-method", "GetGuestDetails",
                        "-payload-hex", req.SerializeToString().hex())
        self.assertEqual(raw["code"], OK)
        self.assertEqual(bytes.fromhex(raw["payload_hex"]), g.SerializeToString())

    def test_fifty_calls_complete_while_one_long_polls(self):
        r = go_client(self.agent.sock, "concurrent", "-n", "50", "-block-timeout", "2s")
        self.assertEqual(r["checks_ok"], 50, r)
        self.assertEqual(r["checks_failed"], [], r)
        self.assertTrue(r["oom_blocked_while_checks_ran"], r)
        # The Checks started 100 ms after the long-poll and did not wait for it.
        self.assertLess(r["checks_done_ms"], 1500, r)
        # GetOOMEvent answered by the agent at its timeout_nano, not before, not much after.
        self.assertEqual(r["oom"]["code"], DEADLINE_EXCEEDED, r)
        self.assertGreaterEqual(r["oom"]["ms"], 1900, r)
        self.assertLess(r["oom"]["ms"], 4000, r)

    def test_unknown_service_and_method_are_unimplemented(self):
        r = go_client(self.agent.sock, "call", "-service", "grpc.AgentService", "-method", "NoSuchMethod")
        self.assertEqual(r["code"], UNIMPLEMENTED, r)
        self.assertIn("NoSuchMethod", r["message"])
        r = go_client(self.agent.sock, "call", "-service", "no.Such", "-method", "Check")
        self.assertEqual(r["code"], UNIMPLEMENTED, r)

    def test_bad_request_payload_is_invalid_argument(self):
        r = go_client(self.agent.sock, "call", "-service", "grpc.Health", "-method", "Check",
                      "-payload-hex", "ffffff")
        self.assertEqual(r["code"], INVALID_ARGUMENT, r)


class TtrpcWire(unittest.TestCase):
    """Malformed and edge-case input on raw sockets: containerd's server behaviour."""

    @classmethod
    def setUpClass(cls):
        cls.agent = HostAgent().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.agent.__exit__(None, None, None)

    def conn(self):
        c = RawTtrpc(self.agent.sock)
        self.addCleanup(c.close)
        return c

    def assert_check_works(self, c, sid):
        c.call(sid, "grpc.Health", "Check")
        got_sid, code, msg, payload = c.response()
        self.assertEqual((got_sid, code), (sid, OK), msg)
        self.assertEqual(payload, b"\x08\x01")  # HealthCheckResponse{status: SERVING}

    def test_check(self):
        self.assert_check_works(self.conn(), 1)

    def test_even_stream_id_is_invalid_argument(self):
        c = self.conn()
        c.call(2, "grpc.Health", "Check")
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (2, INVALID_ARGUMENT), msg)
        self.assertIn("odd", msg)
        self.assert_check_works(c, 3)

    def test_oversized_payload_is_resource_exhausted_and_connection_kept(self):
        c = self.conn()
        c.s.settimeout(30)
        c.send(RawTtrpc.frame(5, 1, b"\0" * (MAX_MESSAGE + 1)))
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (5, RESOURCE_EXHAUSTED), msg)
        self.assertIn(str(MAX_MESSAGE + 1), msg)
        self.assert_check_works(c, 7)
        # Exactly the limit is a normal request: a Check whose (valid) CheckRequest is padded
        # with a long service name so that the ttrpc.Request is 4 MiB to the byte.
        health_pb2 = katatest.python_grpc_modules()[2]
        n = MAX_MESSAGE - 40
        while True:
            body = c.request_bytes("grpc.Health", "Check", health_pb2.CheckRequest(service="a" * n).SerializeToString())
            if len(body) >= MAX_MESSAGE:
                break
            n += MAX_MESSAGE - len(body)
        self.assertEqual(len(body), MAX_MESSAGE)
        c.send(RawTtrpc.frame(9, 1, body))
        sid, code, msg, payload = c.response()
        self.assertEqual((sid, code, payload), (9, OK, b"\x08\x01"), msg)

    def test_unknown_method_is_unimplemented(self):
        c = self.conn()
        c.call(1, "grpc.AgentService", "Bogus")
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (1, UNIMPLEMENTED), msg)
        c.call(3, "bogus.Service", "Check")
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (3, UNIMPLEMENTED), msg)

    def test_garbage_request_payload_is_invalid_argument(self):
        c = self.conn()
        c.send(RawTtrpc.frame(1, 1, b"\xff\xff\xff\xff"))
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (1, INVALID_ARGUMENT), msg)
        self.assert_check_works(c, 3)

    def test_zero_length_request_names_no_method(self):
        c = self.conn()
        c.send(RawTtrpc.frame(1, 1, b""))
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (1, UNIMPLEMENTED), msg)
        self.assert_check_works(c, 3)

    def test_other_frame_types_are_ignored(self):
        c = self.conn()
        c.send(RawTtrpc.frame(1, 3, b"data frame"))
        c.send(RawTtrpc.frame(3, 2, b""))
        c.send(RawTtrpc.frame(5, 99, b"future"))
        self.assert_check_works(c, 7)

    def test_frame_split_into_single_bytes(self):
        c = self.conn()
        data = RawTtrpc.frame(1, 1, c.request_bytes("grpc.Health", "Check"))
        for b in data:
            c.send(bytes([b]))
            time.sleep(0.002)
        sid, code, msg, payload = c.response()
        self.assertEqual((sid, code, payload), (1, OK, b"\x08\x01"), msg)

    def test_pipelined_requests_in_one_write(self):
        c = self.conn()
        data = b"".join(RawTtrpc.frame(2 * i + 1, 1, c.request_bytes("grpc.Health", "Check")) for i in range(20))
        c.send(data)
        sids = sorted(c.response()[0] for _ in range(20))
        self.assertEqual(sids, [2 * i + 1 for i in range(20)])

    def test_truncated_frame_then_eof_closes_the_connection_only(self):
        c = self.conn()
        data = RawTtrpc.frame(1, 1, c.request_bytes("grpc.Health", "Check"))
        c.send(data[:-2])
        c.s.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed_by_peer())
        c2 = self.conn()
        c2.send(RawTtrpc.frame(1, 1, b"")[:6])  # inside the header
        c2.s.shutdown(socket.SHUT_WR)
        self.assertTrue(c2.closed_by_peer())
        self.assertIsNone(self.agent.proc.poll())
        self.assert_check_works(self.conn(), 1)

    def test_timeout_nano_is_the_deadline(self):
        c = self.conn()
        t0 = time.monotonic()
        c.call(1, "grpc.AgentService", "GetOOMEvent", b"", timeout_nano=500_000_000)
        self.assert_check_works(c, 3)  # served meanwhile
        sid, code, msg, _ = c.response()
        took = time.monotonic() - t0
        self.assertEqual((sid, code), (1, DEADLINE_EXCEEDED), msg)
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 3)
        # A negative timeout (the client's deadline passed before it sent) is answered at once.
        c.call(5, "grpc.AgentService", "GetOOMEvent", b"", timeout_nano=-1)
        sid, code, msg, _ = c.response()
        self.assertEqual((sid, code), (5, DEADLINE_EXCEEDED), msg)

    def test_closing_the_connection_cancels_its_calls(self):
        c = RawTtrpc(self.agent.sock)
        try:
            c.call(1, "grpc.AgentService", "GetOOMEvent")  # no deadline: waits for ever
            self.assert_check_works(c, 3)
            time.sleep(0.2)
        finally:
            c.close()
        deadline = time.time() + 5
        while time.time() < deadline:
            if any('"method":"grpc.AgentService/GetOOMEvent"' in l and '"code":"CANCELLED"' in l
                   for l in self.agent.log().splitlines()):
                break
            time.sleep(0.05)
        else:
            self.fail("GetOOMEvent was not cancelled when its connection closed:\n" + self.agent.log()[-3000:])

    def test_idle_connection_waits_and_does_not_block_others(self):
        idle = self.conn()  # a ttrpc client sends nothing until its first call
        for i in range(5):
            self.assert_check_works(self.conn(), 1)
        time.sleep(1.5)
        self.assert_check_works(idle, 1)

    def test_grpc_and_ttrpc_share_the_socket(self):
        for i in range(3):
            self.assertEqual(self.agent.call("Check", proto="grpc")["status"], "SERVING")
            self.assertEqual(self.agent.call("Check", proto="ttrpc")["status"], "SERVING")

    def test_no_fd_leak_after_many_connections(self):
        self.assert_check_works(self.conn(), 1)
        time.sleep(0.2)
        before = katatest.count_fds(self.agent.pid())
        for i in range(100):
            c = RawTtrpc(self.agent.sock)
            c.call(1, "grpc.Health", "Check")
            c.response()
            if i % 2:
                c.call(3, "grpc.AgentService", "GetOOMEvent")  # left running, then cancelled
            c.close()
        deadline = time.time() + 5
        while time.time() < deadline and katatest.count_fds(self.agent.pid()) > before:
            time.sleep(0.05)
        self.assertLessEqual(katatest.count_fds(self.agent.pid()), before)


class AgentCtlTtrpc(unittest.TestCase):
    """agent-ctl's default transport is ttrpc; its answers equal --proto grpc."""

    @classmethod
    def setUpClass(cls):
        cls.agent = HostAgent().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.agent.__exit__(None, None, None)

    def test_same_answers_as_grpc(self):
        for method, req in (("Check", {}), ("Version", {}), ("GetGuestDetails", {"mem_block_size": True})):
            self.assertEqual(self.agent.call(method, req, proto="ttrpc"), self.agent.call(method, req, proto="grpc"))

    def test_default_proto_is_ttrpc(self):
        p = subprocess.run([katatest.AGENT_CTL, "--addr", self.agent.addr, "Check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "SERVING")

    def test_errors_carry_code_and_message(self):
        with self.assertRaises(RpcError) as e:
            self.agent.call("SetPolicy", {"policy": "x"}, proto="ttrpc")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("not a kata-agent policy document", e.exception.message)

    def test_timeout_is_sent_to_the_agent(self):
        t0 = time.monotonic()
        with self.assertRaises(RpcError) as e:
            self.agent.call("GetOOMEvent", {}, proto="ttrpc", timeout=1)
        self.assertEqual(e.exception.code, "DEADLINE_EXCEEDED")
        self.assertLess(time.monotonic() - t0, 5)

    def test_repeat_rate(self):
        p = subprocess.run([katatest.AGENT_CTL, "--addr", self.agent.addr, "--proto", "ttrpc", "--repeat", "200",
                            "Check"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["calls"], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
