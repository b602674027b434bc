"""The agent as a plain process on a unix socket: the foundation methods over agent-ctl
and over an independent client (Debian's python3-grpcio with generated stubs)."""
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent, RpcError  # noqa: E402


class Foundation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = HostAgent().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.agent.__exit__(None, None, None)

    def test_check(self):
        self.assertEqual(self.agent.call("Check")["status"], "SERVING")

    def test_version(self):
        r = self.agent.call("Version")
        self.assertRegex(r["agent_version"], r"^\d+\.\d+\.\d+")
        self.assertRegex(r["grpc_version"], r"^1\.51")

    def test_guest_details(self):
        r = self.agent.call("GetGuestDetails", {"mem_block_size": True})
        d = r["agent_details"]
        self.assertFalse(d["init_daemon"])
        # The host kernel has seccomp filters.
        self.assertTrue(d["supports_seccomp"])
        with open("/sys/devices/system/memory/block_size_bytes") as f:
            self.assertEqual(int(r["mem_block_size_bytes"]), int(f.read(), 16))

    def test_error_names_what_was_wrong(self):
        with self.assertRaises(RpcError) as e:
            self.agent.call("SetPolicy", {"policy": "x"})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("not a kata-agent policy document", e.exception.message)

    def test_python_grpcio_client(self):
        import grpc
        agent_pb2, agent_pb2_grpc, health_pb2, health_pb2_grpc = katatest.python_grpc_modules()
        with grpc.insecure_channel("unix:" + self.agent.sock) as ch:
            h = health_pb2_grpc.HealthStub(ch)
            self.assertEqual(h.Check(health_pb2.CheckRequest(), timeout=10).status,
                             health_pb2.HealthCheckResponse.SERVING)
            self.assertTrue(h.Version(health_pb2.CheckRequest(), timeout=10).agent_version)
            a = agent_pb2_grpc.AgentServiceStub(ch)
            d = a.GetGuestDetails(agent_pb2.GuestDetailsRequest(mem_block_size=True), timeout=10)
            self.assertGreater(d.mem_block_size_bytes, 0)
            # A method the API does not have: UNIMPLEMENTED, naming it.
            no_such = ch.unary_unary("/grpc.AgentService/NoSuchMethod")
            with self.assertRaises(grpc.RpcError) as e:
                no_such(b"", timeout=10)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
            self.assertIn("grpc.AgentService/NoSuchMethod", e.exception.details())

    def test_deadline_is_honoured(self):
        # GetOOMEvent blocks until an OOM event (none comes here): the call ends at its
        # deadline, and the connection serves the next call.
        import grpc
        agent_pb2, agent_pb2_grpc, health_pb2, health_pb2_grpc = katatest.python_grpc_modules()
        with grpc.insecure_channel("unix:" + self.agent.sock) as ch:
            a = agent_pb2_grpc.AgentServiceStub(ch)
            t0 = time.monotonic()
            with self.assertRaises(grpc.RpcError) as e:
                a.GetOOMEvent(agent_pb2.GetOOMEventRequest(), timeout=0.5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - t0, 10)
            h = health_pb2_grpc.HealthStub(ch)
            self.assertEqual(h.Check(health_pb2.CheckRequest(), timeout=10).status, 1)

    def test_garbage_connection_is_closed_and_agent_keeps_serving(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.agent.sock)
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        s.settimeout(5)
        try:
            self.assertEqual(s.recv(100), b"")  # closed by the agent...
        except ConnectionResetError:
            pass  # ...with our bytes unread, which makes it a reset
        s.close()
        self.assertEqual(self.agent.call("Check")["status"], "SERVING")

    def test_host_vsock_is_blocked_in_this_tier(self):
        # The tier runs under tests/host/novsock: a vsock socket must fail here.
        with self.assertRaises(OSError):
            socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)


class Startup(unittest.TestCase):
    def test_no_address_is_a_usage_error_when_not_pid1(self):
        env = {k: v for k, v in os.environ.items() if k != "KATA_AGENT_SERVER_ADDR"}
        p = subprocess.run([katatest.AGENT], capture_output=True, text=True, env=env, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no server address", p.stderr)

    def test_bad_address_fails_clearly(self):
        p = subprocess.run([katatest.AGENT, "--server-addr", "bogus://x"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bogus://x", p.stderr)

    def test_env_address(self):
        a = HostAgent()
        a.addr_env = True
        try:
            a.env["KATA_AGENT_SERVER_ADDR"] = a.addr
            a.extra_args = []
            import subprocess as sp
            log = open(a.log_path, "wb")
            a.proc = sp.Popen([katatest.AGENT], stdout=log, stderr=sp.STDOUT, env=a.env)
            log.close()
            import time
            for _ in range(200):
                if os.path.exists(a.sock):
                    break
                time.sleep(0.05)
            self.assertEqual(a.call("Check")["status"], "SERVING")
        finally:
            a.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
