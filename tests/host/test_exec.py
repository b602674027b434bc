"""ExecProcess, terminals and the streams of exec processes on the host agent: an exec
joins every namespace of its container (compared with the init's /proc/1/ns links), gets
its own process spec (user, capabilities, the container's seccomp filter), a terminal
when asked (stty size before and after TtyWinResize; ^D on CloseStdin), and is forgotten
once waited and drained. 100 concurrent execs complete with their own exit codes and
leave no fd or child behind in the agent. Needs root."""
import os
import signal
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import BIN, HostAgent, RpcError  # noqa: E402
from katatest.containers import ContainerClient, build_rootfs, make_spec  # noqa: E402
from katatest.execs import exec_process, exec_run, read_until, resize  # noqa: E402

NS = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


class ExecTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        cls.agent = HostAgent()
        cls.agent.__enter__()
        os.chmod(cls.agent.tmp, 0o755)
        cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
        probe = os.path.join(BIN, "sec-probe")
        if os.path.exists(probe):
            with open(probe, "rb") as src, open(os.path.join(cls.rootfs, "bin", "sec-probe"), "wb") as dst:
                dst.write(src.read())
            os.chmod(os.path.join(cls.rootfs, "bin", "sec-probe"), 0o755)
        cls.c = ContainerClient(cls.agent.sock)
        # One long-lived container for most tests: its init waits on its stdin.
        spec = make_spec(cls.rootfs, ["/bin/sh", "-c", "read line; echo init-done"],
                         namespaces=("mount", "uts", "ipc", "pid", "network"), hostname="exechost")
        spec["Linux"]["Seccomp"] = {"DefaultAction": "SCMP_ACT_ALLOW", "Syscalls": [
            {"Names": ["mkdir", "mkdirat"], "Action": "SCMP_ACT_ERRNO", "errnoret": 121}]}
        spec["Process"]["NoNewPrivileges"] = True
        cls.cid = "execbox"
        cls.c.create(cls.cid, spec)
        cls.c.start(cls.cid)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.remove(cls.cid)
        finally:
            cls.c.close()
            cls.agent.__exit__(None, None, None)

    def eid(self, name):
        type(self).n += 1
        return f"{name}-{self.n}"

    def test_exec_joins_every_namespace_of_the_init(self):
        script = "; ".join(f"echo {n} $(readlink /proc/self/ns/{n}) $(readlink /proc/1/ns/{n})" for n in NS)
        code, out, err = exec_run(self.c, self.cid, self.eid("ns"), ["/bin/sh", "-c", script + "; hostname"])
        self.assertEqual(code, 0, err)
        lines = out.decode().splitlines()
        for line in lines[:-1]:
            name, mine, init = line.split()
            self.assertEqual(mine, init, name)
        self.assertEqual(lines[-1], "exechost")
        # And not the agent's: the container's own mount, pid, net, uts, ipc namespaces.
        own = {line.split()[0]: line.split()[1] for line in lines[:-1]}
        for n in ("mnt", "pid", "net", "uts", "ipc"):
            self.assertNotEqual(own[n], os.readlink(f"/proc/self/ns/{n}"), n)

    def test_exec_has_its_own_user_caps_and_the_containers_filter(self):
        if not os.path.exists(os.path.join(self.rootfs, "bin", "sec-probe")):
            self.skipTest("sec-probe is not built")
        caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
        # Non-root: what survives the exec is the ambient set.
        proc = {"Capabilities": {"Bounding": caps, "Effective": caps, "Permitted": caps, "Inheritable": caps,
                                 "Ambient": caps},
                "NoNewPrivileges": True}
        code, out, err = exec_run(self.c, self.cid, self.eid("probe"), ["/bin/sec-probe"],
                                  user={"UID": 1000, "GID": 1000, "AdditionalGids": [10]}, process=proc)
        self.assertEqual(code, 0, err)
        d = dict(line.split(" ", 1) for line in out.decode().splitlines() if " " in line)
        self.assertEqual(d["uid"], "1000 1000 1000")
        self.assertEqual(d["groups"], "10")
        self.assertEqual(d["CapEff"], f"{(1 << 5) | (1 << 10):016x}")
        self.assertEqual(d["CapBnd"], f"{(1 << 5) | (1 << 10):016x}")
        self.assertEqual(d["NoNewPrivs"], "1")
        self.assertIn("syscall mkdir errno 121", out.decode().splitlines())
        self.assertEqual(d["HOME"], "/home/user")

    def test_exec_by_user_name(self):
        code, out, err = exec_run(self.c, self.cid, self.eid("name"), ["id"], string_user={"uid": "user"})
        self.assertEqual(code, 0, err)
        self.assertTrue(out.decode().startswith("uid=1000(user) gid=1000(user)"), out)

    def test_tty_shell_runs_commands_and_follows_resize(self):
        eid = self.eid("tty")
        exec_process(self.c, self.cid, eid, ["/bin/sh"], terminal=True, console=(30, 100),
                     env=["PATH=/bin:/usr/bin", "PS1=$ "])
        self.c.write_stdin(self.cid, b"stty size; echo MARK$((40+2))\n", exec_id=eid)
        out = read_until(self.c, self.cid, eid, b"MARK42")
        self.assertIn(b"30 100", out)
        resize(self.c, self.cid, eid, 40, 120)
        self.c.write_stdin(self.cid, b"stty size; tty; echo MARK$((40+3))\n", exec_id=eid)
        out = read_until(self.c, self.cid, eid, b"MARK43")
        self.assertIn(b"40 120", out)
        self.assertIn(b"/dev/pts/", out)
        self.c.write_stdin(self.cid, b"exit 7\n", exec_id=eid)
        self.c.read_all(self.cid, exec_id=eid)
        self.assertEqual(self.c.read(self.cid, "stderr", exec_id=eid), b"")  # the terminal has both
        self.assertEqual(self.c.wait(self.cid, exec_id=eid), 7)

    def test_sigwinch_reaches_the_foreground_process(self):
        eid = self.eid("winch")
        exec_process(self.c, self.cid, eid, ["/bin/sh", "-c", "trap 'echo WINCH $(stty size)' WINCH; "
                                                                   "echo READY; while :; do sleep 0.05; done"],
                     terminal=True)
        read_until(self.c, self.cid, eid, b"READY")
        resize(self.c, self.cid, eid, 33, 77)
        read_until(self.c, self.cid, eid, b"WINCH 33 77")
        self.c.signal(self.cid, signal.SIGKILL, exec_id=eid)
        self.assertEqual(self.c.wait(self.cid, exec_id=eid), 128 + signal.SIGKILL)

    def test_cat_ends_on_close_stdin_with_complete_output(self):
        data = b"".join(b"line %d\n" % i for i in range(2000))
        code, out, _ = exec_run(self.c, self.cid, self.eid("cat"), ["/bin/cat"], stdin=data)
        self.assertEqual(code, 0)
        self.assertEqual(out, data)

    def test_cat_on_a_terminal_ends_on_close_stdin_after_a_partial_line(self):
        eid = self.eid("ttycat")
        exec_process(self.c, self.cid, eid, ["/bin/sh", "-c", "stty -echo; echo READY; cat; echo CAT-EXIT=$?"],
                     terminal=True)
        read_until(self.c, self.cid, eid, b"READY")
        self.c.write_stdin(self.cid, b"first line\nno newline", exec_id=eid)
        self.c.close_stdin(self.cid, exec_id=eid)
        out = self.c.read_all(self.cid, exec_id=eid)
        self.assertEqual(self.c.wait(self.cid, exec_id=eid), 0)
        self.assertIn(b"first line\r\n", out)
        self.assertIn(b"no newline", out)
        self.assertIn(b"CAT-EXIT=0", out)

    def test_signal_and_exit_codes(self):
        eid = self.eid("sleep")
        exec_process(self.c, self.cid, eid, ["/bin/sleep", "100"])
        self.c.signal(self.cid, signal.SIGTERM, exec_id=eid)
        self.assertEqual(self.c.wait(self.cid, exec_id=eid), 128 + signal.SIGTERM)
        self.assertEqual(exec_run(self.c, self.cid, self.eid("exit"), ["/bin/sh", "-c", "exit 42"])[0], 42)

    def test_waited_and_drained_exec_is_released_and_its_id_reusable(self):
        code, out, _ = exec_run(self.c, self.cid, "reuse", ["/bin/echo", "one"])
        self.assertEqual((code, out), (0, b"one\n"))
        with self.assertRaises(RpcError) as e:
            self.c.read(self.cid, exec_id="reuse")
        self.assertEqual(e.exception.code, "NOT_FOUND")
        code, out, _ = exec_run(self.c, self.cid, "reuse", ["/bin/echo", "two"])
        self.assertEqual((code, out), (0, b"two\n"))

    def test_bad_execs_are_refused_with_reasons(self):
        eid = self.eid("dup")
        exec_process(self.c, self.cid, eid, ["/bin/sleep", "100"])
        try:
            with self.assertRaises(RpcError) as e:
                exec_process(self.c, self.cid, eid, ["/bin/true"])
            self.assertEqual(e.exception.code, "ALREADY_EXISTS")
        finally:
            self.c.signal(self.cid, signal.SIGKILL, exec_id=eid)
            self.c.wait(self.cid, exec_id=eid)
        with self.assertRaises(RpcError) as e:
            exec_process(self.c, self.cid, self.cid, ["/bin/true"])  # the init's exec id
        self.assertEqual(e.exception.code, "ALREADY_EXISTS")
        with self.assertRaises(RpcError) as e:
            exec_process(self.c, "nosuchbox", "x1", ["/bin/true"])
        self.assertEqual(e.exception.code, "NOT_FOUND")
        with self.assertRaises(RpcError) as e:
            exec_process(self.c, self.cid, self.eid("missing"), ["/no/such/program"])
        self.assertIn("exec", e.exception.message)
        self.assertIn("ENOENT", e.exception.message)
        with self.assertRaises(RpcError) as e:
            exec_process(self.c, self.cid, self.eid("badcap"), ["/bin/true"],
                         process={"Capabilities": {"Bounding": ["CAP_NOPE"]}})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(RpcError) as e:
            resize(self.c, self.cid, "", 10, 10)  # the init has no terminal
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        self.assertIsNone(self.agent.proc.poll())

    def test_hundred_concurrent_execs(self):
        fds_before = len(os.listdir(f"/proc/{self.agent.pid()}/fd"))
        results, errors = {}, []

        def one(i):
            try:
                results[i] = exec_run(self.c, self.cid, f"many-{i}", ["/bin/sh", "-c", f"echo {i}; exit {i % 200}"])
            except Exception as e:  # noqa: BLE001
                errors.append(f"{i}: {e}")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for i in range(100):
            self.assertEqual(results[i][0], i % 200, i)
            self.assertEqual(results[i][1], b"%d\n" % i)
        self.assertEqual(len(os.listdir(f"/proc/{self.agent.pid()}/fd")), fds_before)


class TerminalInit(unittest.TestCase):
    def test_init_with_a_terminal(self):
        katatest.require_root(self)
        with HostAgent() as agent:
            rootfs = build_rootfs(os.path.join(agent.tmp, "rootfs"))
            c = ContainerClient(agent.sock)
            spec = make_spec(rootfs, ["/bin/sh", "-c", "tty; stty size; echo to-stderr >&2"])
            spec["Process"]["Terminal"] = True
            spec["Process"]["ConsoleSize"] = {"Height": 24, "Width": 132}
            code, out, err = c.run("ttyinit", spec)
            c.close()
        self.assertEqual(code, 0)
        self.assertEqual(err, b"")
        lines = out.decode().split("\r\n")
        self.assertTrue(lines[0].startswith("/dev/pts/"), out)
        self.assertEqual(lines[1], "24 132")
        self.assertEqual(lines[2], "to-stderr")


if __name__ == "__main__":
    unittest.main()
