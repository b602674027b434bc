"""The agent console: debug shells over vsock (agent-ctl console, driven through a pty as a
person's terminal would be) and on the serial console, and the log port (agent-ctl logs).
The shell tests boot the test initrd (busybox); the production initrd has no shell, and the
debug console there only warns."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402

CONSOLE_PORT = 1026
LOG_PORT = 1025


def require_tools():
    katatest.require_vsockd()
    if not os.path.exists(katatest.AGENT_CTL):
        raise unittest.SkipTest(f"{katatest.AGENT_CTL} is missing")


class PtyConsole:
    """`agent-ctl console` with a pty as its terminal; the test plays the person typing."""

    def __init__(self, addr):
        self.master, slave = os.openpty()
        self.initial_termios = termios.tcgetattr(self.master)
        self.proc = subprocess.Popen([katatest.AGENT_CTL, "console", "--addr", addr],
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.out = b""
        self.pos = 0  # expect() searches from here

    def send(self, data):
        os.write(self.master, data)

    def read_some(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: agent-ctl exited and the pty has no other holder
            return False
        self.out += chunk
        return bool(chunk)

    def expect(self, pattern, timeout=60):
        """Waits for a regex (bytes) in the output after the last match; returns the match."""
        rx = re.compile(pattern, re.S)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no {pattern!r} within {timeout} s; output: {self.out[-3000:]!r}")
            if not self.read_some(min(left, 0.5)) and self.proc.poll() is not None:
                self.read_some(0.1)
                m = rx.search(self.out, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                raise RuntimeError(f"agent-ctl exited {self.proc.returncode} before {pattern!r}; "
                                   f"output: {self.out[-3000:]!r}")

    def run(self, command, marker, timeout=60):
        """Types a command line between two echoes of markers the shell computes (so the
        echoed input, however the line editor wraps it, never matches); returns the output
        between them."""
        a, b = marker
        self.send(f"echo B{a}x{b}=$(({a}*{b})); {command}; echo E{a}+{b}=$(({a}+{b}))\r".encode())
        m = self.expect(rf"B{a}x{b}={a * b}\r\n(.*?)E{a}\+{b}={a + b}\r\n".encode(), timeout)
        return m.group(1)

    def shell_pid(self):
        out = self.run("echo $$", (20, 22))
        return int(re.search(rb"(\d+)\r\n", out).group(1))

    def leave(self, timeout=20):
        """Enter ~. (the escape to leave); returns agent-ctl's exit code."""
        self.send(b"\r~.")
        return self.proc.wait(timeout)

    def termios_now(self):
        return termios.tcgetattr(self.master)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


class ConsoleOverVsock(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_guest(katatest.INITRD_TEST)
        require_tools()
        cls.vm = katatest.katavm().VM(
            initrd=katatest.INITRD_TEST,
            cmdline=["agent.log=debug", "agent.debug_console", f"agent.debug_console_vport={CONSOLE_PORT}",
                     f"agent.log_vport={LOG_PORT}"])
        cls.vm.__enter__()
        try:
            cls.vm.wait_agent(timeout=180)
        except BaseException:
            cls.vm.__exit__(*sys.exc_info())
            raise
        cls.console_addr = cls.vm.agent_addr(CONSOLE_PORT)
        cls.log_addr = cls.vm.agent_addr(LOG_PORT)

    @classmethod
    def tearDownClass(cls):
        cls.vm.__exit__(None, None, None)

    def setUp(self):
        self.consoles = []

    def tearDown(self):
        for c in self.consoles:
            c.close()

    def open_console(self):
        c = PtyConsole(self.console_addr)
        self.consoles.append(c)
        c.expect(rb"connected to .*?~\. leaves", 60)
        return c

    # ---- shells over vsock ----

    def test_session_runs_commands(self):
        c = self.open_console()
        c.send(b"touch /run/console-test\r")
        c.send(b"echo $$; ls /run; echo END$((40+2))\r")
        m = c.expect(rb"\r\n(\d+)\r\n(.*?)END42\r\n", 60)
        pid, listing = int(m.group(1)), m.group(2)
        self.assertGreater(pid, 1)
        self.assertIn(b"console-test", listing)
        # The shell has a controlling terminal and leads its own session (job control).
        out = c.run("tty; cat /proc/$$/stat", (1, 2))
        self.assertRegex(out, rb"/dev/pts/\d+")
        fields = out.split(b")")[-1].split()
        self.assertEqual(int(fields[3]), pid, out)  # session id = the shell's pid
        self.assertEqual(c.leave(), 0)
        self.assertEqual(c.termios_now(), c.initial_termios, "the local terminal was not restored")

    def test_two_sessions_at_once_get_different_shells(self):
        a = self.open_console()
        b = self.open_console()
        pa, pb = a.shell_pid(), b.shell_pid()
        self.assertNotEqual(pa, pb)
        # Both still answer: neither took over the other.
        self.assertEqual(a.shell_pid(), pa)
        self.assertEqual(b.shell_pid(), pb)
        self.assertEqual(a.leave(), 0)
        self.assertEqual(b.leave(), 0)

    def test_ctrl_c_interrupts_the_foreground_job(self):
        c = self.open_console()
        watcher = self.open_console()
        count = "ps | grep -c '[s]leep 100'"
        c.send(b"sleep 100\r")
        c.expect(rb"sleep 100\r\n", 30)
        deadline = time.time() + 30
        while watcher.run(count, (3, 4)).strip() != b"1":
            self.assertLess(time.time(), deadline, "sleep 100 did not start")
            time.sleep(0.5)
        t0 = time.time()
        c.send(b"\x03")
        c.send(b"echo status=$?; echo END$((50+5))\r")
        m = c.expect(rb"status=(\d+)\r\nEND55\r\n", 30)
        self.assertLess(time.time() - t0, 20, "the prompt did not come back promptly")
        self.assertEqual(m.group(1), b"130")  # 128 + SIGINT: the job got the ^C as a signal
        self.assertEqual(watcher.run(count, (7, 8)).strip(), b"0")

    def test_window_size_is_settable(self):
        c = self.open_console()
        self.assertIn(b"24 80", c.run("stty size", (9, 10)))
        self.assertIn(b"40 120", c.run("stty rows 40 cols 120; stty size", (11, 12)))

    def test_disconnect_ends_the_shell_and_reaps_it(self):
        c = self.open_console()
        pid = c.shell_pid()
        out = c.run("sleep 1000 & echo job=$!", (13, 14))  # a job in its own process group
        job = int(re.search(rb"job=(\d+)", out).group(1))
        watcher = self.open_console()
        probe = f"for p in {pid} {job}; do kill -0 $p 2>/dev/null && echo alive-$p || echo gone-$p; done"
        self.assertIn(f"alive-{pid}".encode(), watcher.run(probe, (17, 18)))
        self.assertEqual(c.leave(), 0)
        deadline = time.time() + 30
        while True:
            out = watcher.run(probe, (19, 20))
            # kill -0 succeeds on a zombie too: "gone" means reaped.
            if f"gone-{pid}".encode() in out and f"gone-{job}".encode() in out:
                break
            self.assertLess(time.time(), deadline, out)
            time.sleep(0.5)

    def test_shell_exit_closes_the_connection(self):
        c = self.open_console()
        c.shell_pid()
        c.send(b"exit\r")
        self.assertEqual(c.proc.wait(30), 0)
        self.assertEqual(c.termios_now(), c.initial_termios)

    def test_terminal_restored_when_agent_ctl_is_terminated(self):
        c = self.open_console()
        c.shell_pid()
        self.assertNotEqual(c.termios_now(), c.initial_termios, "agent-ctl did not set raw mode")
        c.proc.send_signal(signal.SIGTERM)
        self.assertEqual(c.proc.wait(20), 128 + signal.SIGTERM)
        self.assertEqual(c.termios_now(), c.initial_termios)

    def test_scripted_without_a_terminal(self):
        p = subprocess.run([katatest.AGENT_CTL, "console", "--addr", self.console_addr],
                           input=b"echo script-$((6*7))\nls /\n", capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"script-42", p.stdout)
        self.assertIn(b"proc", p.stdout)
        # The end of input comes while a command runs, then a reader waits for it.
        p = subprocess.run([katatest.AGENT_CTL, "console", "--addr", self.console_addr],
                           input=b"sleep 2; echo slept-$((6*7))\ncat\n", capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"slept-42", p.stdout)

    # ---- the serial console ----

    def test_serial_console_shell_answers(self):
        self.vm.wait_console(r'"msg":"debug console: shell started"', timeout=60)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.vm.console_sock)
            s.settimeout(1)
            got = b""
            deadline = time.time() + 60
            while b"serial-42" not in got:
                self.assertLess(time.time(), deadline, got[-3000:])
                s.sendall(b"echo serial-$((6*7)); tty\r")
                end = time.time() + 5
                while time.time() < end and b"serial-42" not in got:
                    try:
                        got += s.recv(65536)
                    except socket.timeout:
                        pass
            end = time.time() + 10
            while time.time() < end and not re.search(rb"/dev/ttyS\d", got):
                try:
                    got += s.recv(65536)
                except socket.timeout:
                    pass
            self.assertRegex(got, rb"/dev/ttyS\d")
        finally:
            s.close()

    # ---- the log port ----

    def test_logs_backlog_then_follow(self):
        p = subprocess.run([katatest.AGENT_CTL, "logs", "--addr", self.log_addr],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(lines[0]["msg"], "log port: client connected", lines[0])
        self.assertEqual(len(lines) - 1, lines[0]["backlog_lines"])
        msgs = [l["msg"] for l in lines]
        # Logged before any client connected, kept in the backlog.
        self.assertIn("listening", msgs)
        self.assertIn("debug console listening", msgs)

        follow = subprocess.Popen([katatest.AGENT_CTL, "logs", "--follow", "--addr", self.log_addr],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            lines = LineReader(follow.stdout.fileno())
            greeting = json.loads(lines.next(60))
            self.assertEqual(greeting["msg"], "log port: client connected")
            self.assertEqual(katatest.agent_ctl(self.vm.agent_addr(), "Check", proto="ttrpc")["status"],
                             "SERVING")
            deadline = time.time() + 60
            seen = []
            while not seen or seen[-1]["msg"] != "ttrpc: connection":  # the Check's, at debug level
                self.assertLess(time.time(), deadline, seen)
                seen.append(json.loads(lines.next(deadline - time.time())))
        finally:
            follow.kill()
            follow.wait(10)


class LineReader:
    """Lines from a pipe, each waited for at most a given time."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def next(self, timeout):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            r, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not r:
                raise TimeoutError(f"no complete line within {timeout:.0f} s: {self.buf[-2000:]!r}")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError(f"end of output: {self.buf[-2000:]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


class ConsoleWithoutShell(unittest.TestCase):
    """The production initrd: no shell, so the debug console warns once and refuses."""

    def test_warns_and_does_not_spin(self):
        katatest.require_guest(katatest.INITRD)
        require_tools()
        k = katatest.katavm()
        with k.VM(cmdline=["agent.debug_console", f"agent.debug_console_vport={CONSOLE_PORT}"]) as vm:
            vm.wait_agent(timeout=180)
            p = subprocess.run([katatest.AGENT_CTL, "console", "--addr", vm.agent_addr(CONSOLE_PORT)],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            self.assertIn(b"no shell", p.stdout)
            time.sleep(3)
            text = vm.console_text()
            self.assertEqual(text.count("agent.debug_console is ignored"), 1, text[-5000:])
            self.assertNotIn("debug console: shell started", text)
            self.assertEqual(katatest.agent_ctl(vm.agent_addr(), "Check")["status"], "SERVING")


if __name__ == "__main__":
    unittest.main()
