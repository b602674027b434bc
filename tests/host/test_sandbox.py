"""The sandbox on the host (the agent as root on a unix socket, not PID 1): guest hooks at
their lifecycle points with the OCI state on stdin, a failing create hook undoing the
container, the dns file given to containers that bind /etc/resolv.conf, bad CreateSandbox
requests, kernel modules refused outside the guest, container RPCs before CreateSandbox,
and DestroySandbox's SIGTERM, grace period and poststop hooks."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent, RpcError, zombies_of  # noqa: E402
from katatest.containers import ContainerClient, build_rootfs, make_spec  # noqa: E402

HOOK_TYPES = ("createRuntime", "prestart", "createContainer", "startContainer", "poststart", "poststop")
DNS = ["nameserver 10.96.0.10", "search default.svc.cluster.local", "options ndots:5"]


class SandboxOnHost(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        cls.agent = HostAgent(extra_args=["--bundle-dir", "BUNDLES"])
        cls.bundles = cls.agent.extra_args[1] = os.path.join(cls.agent.tmp, "bundles")
        cls.agent.__enter__()
        cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
        cls.c = ContainerClient(cls.agent.sock)
        cls.pb = cls.c.pb
        cls.hooks = os.path.join(cls.agent.tmp, "hooks")
        cls.out = os.path.join(cls.agent.tmp, "hooks-out")
        os.makedirs(cls.out)
        for t in HOOK_TYPES:
            os.makedirs(os.path.join(cls.hooks, t))
            cls.write_hook(t, "10-record",
                           f"#!/bin/sh\necho \"${{0##*/}} $1 env=$(env | grep -vc '^PWD=\\|^SHLVL=\\|^_=')\" "
                           f">> {cls.out}/$1.argv\ncat >> {cls.out}/$1.jsonl\necho >> {cls.out}/$1.jsonl\n")
        # A create hook that fails for one container id only.
        cls.write_hook("createRuntime", "20-refuse-bad",
                       "#!/bin/sh\nif grep -q '\"id\":\"refused\"'; then echo no such thing >&2; exit 7; fi\n")

    @classmethod
    def write_hook(cls, kind, name, text):
        p = os.path.join(cls.hooks, kind, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.agent.__exit__(None, None, None)

    def states(self, kind):
        p = os.path.join(self.out, f"{kind}.jsonl")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(line) for line in f if line.strip()]

    def sandbox(self, **kw):
        return self.c.call("CreateSandbox", self.pb.CreateSandboxRequest(**kw))

    def test_1_containers_before_create_sandbox_then_bad_requests(self):
        # As upstream: container RPCs need no CreateSandbox (the pod's settings are just absent).
        code, out, _ = self.c.run("early", make_spec(self.rootfs, ["/bin/echo", "early"]))
        self.assertEqual((code, out), (0, b"early\n"))
        bad = [
            (dict(dns=["nameserver 1.1.1.1\nnameserver 2.2.2.2"]), "INVALID_ARGUMENT", "dns[0]"),
            (dict(guest_hook_path="relative/hooks"), "INVALID_ARGUMENT", "guest_hook_path"),
            (dict(kernel_modules=[self.pb.KernelModule(name="../evil")]), "INVALID_ARGUMENT", "kernel_modules[0]"),
            (dict(sandbox_id="bad/id"), "INVALID_ARGUMENT", "sandbox_id"),
            # Modules are the guest's business: a host's kernel is never asked to load one.
            (dict(kernel_modules=[self.pb.KernelModule(name="dummy")]), "FAILED_PRECONDITION", "PID 1"),
        ]
        for req, code, word in bad:
            with self.subTest(req=req):
                with self.assertRaises(RpcError) as e:
                    self.sandbox(hostname="pod", **req)
                self.assertEqual(e.exception.code, code, e.exception.message)
                self.assertIn(word, e.exception.message)
        # Nothing of them stayed: the real one is accepted.
        self.sandbox(hostname="pod", sandbox_id="sb1", dns=DNS, guest_hook_path=self.hooks)
        with open(os.path.join(self.bundles, "sandbox", "resolv.conf")) as f:
            self.assertEqual(f.read(), "".join(d + "\n" for d in DNS))

    def test_2_hooks_at_their_points_with_the_state(self):
        host_resolv = os.path.join(self.agent.tmp, "host-resolv.conf")
        with open(host_resolv, "w") as f:
            f.write("nameserver 192.0.2.1\n")
        spec = make_spec(self.rootfs, ["/bin/sh", "-c", "cat /etc/resolv.conf"],
                         mounts=[{"destination": "/etc/resolv.conf", "type": "bind", "source": host_resolv,
                                  "options": ["rbind", "ro"]}])
        spec["Annotations"] = {"io.kubernetes.cri.container-type": "container"}
        self.c.create("hooked", spec)
        created = {k: [s for s in self.states(k) if s["id"] == "hooked"]
                   for k in ("createRuntime", "prestart", "createContainer")}
        for k, s in created.items():
            self.assertEqual(len(s), 1, k)
            self.assertEqual(s[0]["status"], "created")
            self.assertEqual(s[0]["bundle"], os.path.join(self.bundles, "hooked"))
            self.assertEqual(s[0]["annotations"], {"io.kubernetes.cri.container-type": "container"})
            self.assertEqual(s[0]["ociVersion"], "1.0.2")
            pid = s[0]["pid"]
        # The init is waiting for StartContainer: the pid is alive and not yet exec'd.
        self.assertTrue(os.path.exists(f"/proc/{pid}"))
        self.assertEqual(self.states("startContainer"), [])
        self.c.start("hooked")
        self.assertEqual([s["pid"] for s in self.states("startContainer")], [pid])
        self.assertEqual(self.states("poststart")[0]["status"], "running")
        out = self.c.read_all("hooked").decode()
        self.assertEqual(self.c.wait("hooked"), 0)
        # The sandbox's dns, not the host file the spec named.
        self.assertEqual(out, "".join(d + "\n" for d in DNS))
        self.assertEqual(self.states("poststop"), [])
        self.c.remove("hooked")
        stop = self.states("poststop")
        self.assertEqual([(s["id"], s["status"], "pid" in s) for s in stop], [("hooked", "stopped", False)])
        # argv {file name, type} (a script's $0 is its path, $1 the type); nothing of the
        # agent's environment.
        with open(os.path.join(self.out, "prestart.argv")) as f:
            self.assertEqual(f.read().split("\n")[0], "10-record prestart env=0")

    def test_3_a_failing_create_hook_undoes_the_container(self):
        with self.assertRaises(RpcError) as e:
            self.c.create("refused", make_spec(self.rootfs, ["/bin/true"]))
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        self.assertIn("createRuntime hook", e.exception.message)
        self.assertIn("exited 7", e.exception.message)
        self.assertIn("no such thing", e.exception.message)
        with self.assertRaises(RpcError) as e:
            self.c.wait("refused")
        self.assertEqual(e.exception.code, "NOT_FOUND")
        # Its init was killed and reaped; prestart never ran for it.
        self.assertNotIn("refused", [s["id"] for s in self.states("prestart")])
        self.assertEqual(zombies_of(self.agent.pid()), [])

    def test_9_destroy_sandbox_sigterm_grace_then_poststop(self):
        # One container stops on SIGTERM (a handler), one ignores it until SIGKILL.
        self.c.create("polite", make_spec(self.rootfs, ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"]))
        self.c.create("stubborn", make_spec(self.rootfs, ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"]))
        self.c.start("polite")
        self.c.start("stubborn")
        time.sleep(0.3)  # the shells have set their traps
        t0 = time.monotonic()
        self.c.call("DestroySandbox", self.pb.DestroySandboxRequest())
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 4.5, "the grace period before SIGKILL")
        self.assertLess(took, 30)
        stop = {s["id"] for s in self.states("poststop")}
        self.assertTrue({"polite", "stubborn"} <= stop, stop)
        self.assertEqual(zombies_of(self.agent.pid()), [])
        self.assertEqual(self.agent.call("Check")["status"], "SERVING")
        # A new sandbox has no hooks and no dns of the old one.
        self.sandbox(hostname="again")
        n = len(self.states("prestart"))
        self.c.run("after", make_spec(self.rootfs, ["/bin/true"]))
        self.assertEqual(len(self.states("prestart")), n)
        self.c.call("DestroySandbox", self.pb.DestroySandboxRequest())


if __name__ == "__main__":
    unittest.main()
