"""The API policy (docs/policy.md) on the host agent.

- Set once by SetPolicy: a denied exec is answered PERMISSION_DENIED (and logged) while an
  allowed one runs; CopyFile writes only to allowed paths; a second SetPolicy is refused.
- Given at start (--policy, the agent.policy= of a guest): a denied method is refused,
  SetPolicy is refused naming the boot policy.
- Documents that are not ours (Rego, garbage, unknown fields) are INVALID_ARGUMENT, and a
  policy file that does not parse stops the agent before it listens.
Needs root (containers)."""
import base64
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import AGENT, HostAgent, RpcError  # noqa: E402
from katatest.containers import ContainerClient, build_rootfs, make_spec  # noqa: E402
from katatest.execs import exec_process, exec_run  # noqa: E402

REGO = """package agent_policy

default CreateContainerRequest := false
"""


class SetPolicyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        cls.agent = HostAgent(own_bundle_dir=True)
        cls.bundles = cls.agent.bundles
        cls.agent.__enter__()
        os.chmod(cls.agent.tmp, 0o755)
        cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
        cls.c = ContainerClient(cls.agent.sock)
        cls.c.create("box", make_spec(cls.rootfs, ["/bin/sh", "-c", "read line"]))
        cls.c.start("box")
        # Documents that are not policies change nothing: the policy below is still the first.
        cls.refusals = {}
        for name, doc in (("rego", REGO), ("garbage", "x"), ("unknown_field", '{"version": 1, "alow": []}'),
                          ("unknown_method", '{"version": 1, "deny": ["ExecProces"]}')):
            try:
                cls.agent.call("SetPolicy", {"policy": doc}, proto="ttrpc")
                cls.refusals[name] = None
            except RpcError as e:
                cls.refusals[name] = e
        cls.policy = {
            "version": 1,
            "deny": ["SetIPTables"],
            "exec": {"allowedArgv": [{"args": ["/bin/echo", "..."]}]},
            "copyFile": {"allowedPaths": [os.path.join(cls.bundles, "shared", "**")]},
        }
        cls.agent.call("SetPolicy", {"policy": json.dumps(cls.policy)})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.remove("box")
        finally:
            cls.c.close()
            cls.agent.__exit__(None, None, None)

    def test_documents_that_are_not_policies_are_invalid(self):
        for name in ("rego", "garbage", "unknown_field", "unknown_method"):
            e = self.refusals[name]
            self.assertIsNotNone(e, f"{name} was accepted")
            self.assertEqual(e.code, "INVALID_ARGUMENT", name)
        self.assertIn("Rego", self.refusals["rego"].message)
        self.assertIn("alow", self.refusals["unknown_field"].message)
        self.assertIn("ExecProces", self.refusals["unknown_method"].message)

    def test_allowed_exec_runs_denied_exec_is_refused(self):
        code, out, _ = exec_run(self.c, "box", "ok-1", ["/bin/echo", "allowed", "run"])
        self.assertEqual((code, out), (0, b"allowed run\n"))
        marker = os.path.join(self.rootfs, "denied-ran")
        with self.assertRaises(RpcError) as e:
            exec_process(self.c, "box", "bad-1", ["/bin/sh", "-c", "touch /denied-ran"])
        self.assertEqual(e.exception.code, "PERMISSION_DENIED")
        self.assertIn('["/bin/sh", "-c", "touch /denied-ran"]', e.exception.message)
        self.assertFalse(os.path.exists(marker))
        # The refused exec left no process behind: its id is free for an allowed one.
        code, out, _ = exec_run(self.c, "box", "bad-1", ["/bin/echo"])
        self.assertEqual((code, out), (0, b"\n"))
        self.assertIn('"policy denied a call"', self.agent.log())
        self.assertIn("grpc.AgentService/ExecProcess", self.agent.log())

    def test_denied_method_over_both_protocols(self):
        for proto in ("grpc", "ttrpc"):
            with self.assertRaises(RpcError) as e:
                self.agent.call("SetIPTables", {"is_ipv6": False, "data": ""}, proto=proto)
            self.assertEqual(e.exception.code, "PERMISSION_DENIED", proto)
            self.assertIn("SetIPTables", e.exception.message)

    def test_copy_file_only_to_allowed_paths(self):
        data = b"policy-ok\n"
        ok = os.path.join(self.bundles, "shared", "c1", "f.txt")
        self.agent.call("CopyFile", {"path": ok, "file_size": len(data), "file_mode": 0o100644, "dir_mode": 0o755,
                                     "data": base64.b64encode(data).decode()})
        with open(ok, "rb") as f:
            self.assertEqual(f.read(), data)
        for bad in (os.path.join(self.bundles, "other", "f.txt"),
                    os.path.join(self.bundles, "shared", "..", "other", "g.txt")):
            with self.assertRaises(RpcError) as e:
                self.agent.call("CopyFile", {"path": bad, "file_size": 1, "file_mode": 0o100644, "data": "eA=="})
            self.assertEqual(e.exception.code, "PERMISSION_DENIED", bad)
            self.assertIn("policy", e.exception.message)
        self.assertFalse(os.path.exists(os.path.join(self.bundles, "other")))

    def test_policy_cannot_be_replaced(self):
        with self.assertRaises(RpcError) as e:
            self.agent.call("SetPolicy", {"policy": '{"version": 1}'})
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        self.assertIn("SetPolicy", e.exception.message)
        # Still in force.
        with self.assertRaises(RpcError) as e:
            exec_process(self.c, "box", "bad-2", ["/bin/true"])
        self.assertEqual(e.exception.code, "PERMISSION_DENIED")

    def test_denials_are_counted_in_metrics(self):
        with self.assertRaises(RpcError):
            self.agent.call("SetIPTables", {"data": ""})
        from katatest.prometheus import parse_exposition, value
        fams = parse_exposition(self.agent.call("GetMetrics", {})["metrics"])
        self.assertGreaterEqual(value(fams, "kata_agent_rpc_errors_total",
                                      method="grpc.AgentService/SetIPTables"), 1)


class BootPolicyTest(unittest.TestCase):
    def setUp(self):
        katatest.require_root(self)

    def test_policy_given_at_start(self):
        agent = HostAgent(extra_args=["--policy", "FILE"])
        path = os.path.join(agent.tmp, "policy.json")
        with open(path, "w") as f:
            json.dump({"version": 1, "allow": ["Check", "GetGuestDetails", "SetPolicy"]}, f)
        agent.extra_args[1] = path
        with agent:
            self.assertIn('"policy in force"', agent.log())
            agent.call("GetGuestDetails", {})
            with self.assertRaises(RpcError) as e:
                agent.call("ListInterfaces", {}, proto="ttrpc")
            self.assertEqual(e.exception.code, "PERMISSION_DENIED")
            with self.assertRaises(RpcError) as e:
                agent.call("SetPolicy", {"policy": '{"version": 1}'})
            self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
            self.assertIn("agent.policy=" + path, e.exception.message)

    def test_policy_file_that_does_not_parse_stops_the_agent(self):
        agent = HostAgent()
        try:
            for doc, expect in ((REGO, "Rego"), ('{"version": 1, "allow": ["Nope"]}', 'unknown method')):
                path = os.path.join(agent.tmp, "bad.json")
                with open(path, "w") as f:
                    f.write(doc)
                p = subprocess.run([AGENT, "--server-addr", agent.addr, "--policy", path], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn(expect, p.stdout + p.stderr)
                self.assertIn("cannot start the agent", p.stdout + p.stderr)
            p = subprocess.run([AGENT, "--server-addr", agent.addr, "--policy", os.path.join(agent.tmp, "missing")],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1)
            self.assertIn("agent.policy", p.stdout + p.stderr)
        finally:
            agent.cleanup()


if __name__ == "__main__":
    unittest.main()
