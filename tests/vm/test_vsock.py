"""The vsock backend (vsockd) with a real guest: byte-exact streams both ways, many
concurrent connections, refusals, clients that die, guest-initiated connections, memory
hot-plug while data flows, a guest reset and a QEMU restart behind the same backend.

The guest runs tests/vm/guest/vsock-init.sh: vsock-echo listeners on ports 5000 (echo),
5001 (sink), 5002 (source) and 5003 (dial: connect back to the host)."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from katatest import hvsock  # noqa: E402
from katatest.hvsock import PORT_DIAL, PORT_ECHO, PORT_SINK, PORT_SOURCE  # noqa: E402

MIB = 1 << 20


def sink(vm, data):
    """Sends data to the guest's sink; returns its reply (count, sha256)."""
    s, _ = vm.connect(PORT_SINK)
    with s:
        s.settimeout(600)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        reply = hvsock.recv_all(s).decode()
    count, digest = reply.split()
    return int(count), digest


def source(vm, n):
    """Asks the guest for n bytes; returns (data, the sha256 the guest computed)."""
    s, _ = vm.connect(PORT_SOURCE)
    with s:
        s.settimeout(600)
        s.sendall(f"{n}\n".encode())
        blob = hvsock.recv_all(s)
    return blob[:-65], blob[-65:-1].decode()


def echo_rounds(vm, rounds, errors, sizes=(1, 17, 300, 4096, 10000)):
    try:
        s, _ = vm.connect(PORT_ECHO)
        with s:
            s.settimeout(120)
            for i in range(rounds):
                msg = os.urandom(sizes[i % len(sizes)])
                s.sendall(msg)
                if hvsock.recv_exact(s, len(msg)) != msg:
                    raise AssertionError(f"round {i}: echo differs")
            s.shutdown(socket.SHUT_WR)
            if s.recv(1) != b"":
                raise AssertionError("echo sent more than it got")
    except BaseException as e:  # reported by the main thread
        errors.append(e)


class VsockStreams(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hvsock.require_echo_guest()
        cls.vm = hvsock.EchoVM().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.vm.__exit__(None, None, None)

    def tearDown(self):
        self.assertTrue(self.vm.vsockd_alive(), self.vm.vm.read_log("vsockd")[-3000:])

    def test_64mib_host_to_guest_byte_exact(self):
        data = os.urandom(64 * MIB)
        t0 = time.time()
        count, digest = sink(self.vm, data)
        secs = time.time() - t0
        self.assertEqual(count, len(data))
        self.assertEqual(digest, hashlib.sha256(data).hexdigest())
        print(f"\n  host->guest 64 MiB in {secs:.1f} s ({64 / secs:.1f} MiB/s)", file=sys.stderr)

    def test_64mib_guest_to_host_byte_exact(self):
        t0 = time.time()
        data, digest = source(self.vm, 64 * MIB)
        secs = time.time() - t0
        self.assertEqual(len(data), 64 * MIB)
        self.assertEqual(hashlib.sha256(data).hexdigest(), digest)
        print(f"\n  guest->host 64 MiB in {secs:.1f} s ({64 / secs:.1f} MiB/s)", file=sys.stderr)

    def test_8_concurrent_connections_1000_round_trips_each(self):
        errors = []
        threads = [threading.Thread(target=echo_rounds, args=(self.vm, 1000, errors)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        self.assertFalse(any(t.is_alive() for t in threads), "echo threads still running")
        self.assertEqual(errors, [])

    def test_100_connections_open_at_once(self):
        conns = []
        try:
            for _ in range(100):
                conns.append(self.vm.connect(PORT_ECHO)[0])
            for i, s in enumerate(conns):
                s.sendall(f"connection {i}\n".encode())
            for i, s in enumerate(conns):
                want = f"connection {i}\n".encode()
                self.assertEqual(hvsock.recv_exact(s, len(want)), want)
        finally:
            for s in conns:
                s.close()
        errors = []
        echo_rounds(self.vm, 10, errors)
        self.assertEqual(errors, [])

    def test_both_directions_at_once(self):
        """A slow host reader: the guest echoes 16 MiB while the host writes all of it before
        reading anything; credit and the socket buffers must carry it without loss."""
        data = os.urandom(16 * MIB)
        s, _ = self.vm.connect(PORT_ECHO)
        got = []
        with s:
            s.settimeout(300)

            def reader():
                time.sleep(2)  # nobody reads for a while: back-pressure, not buffering
                got.append(hvsock.recv_all(s))
            t = threading.Thread(target=reader)
            t.start()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            t.join(300)
        self.assertEqual(len(got[0]), len(data))
        self.assertEqual(got[0], data)

    def test_no_listener_closed_without_ok_within_5s(self):
        t0 = time.time()
        with self.assertRaises(hvsock.Refused):
            self.vm.connect(6000, timeout=10)
        self.assertLess(time.time() - t0, 5)
        # Garbage instead of CONNECT: closed too.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with s:
            s.settimeout(10)
            s.connect(self.vm.uds)
            s.sendall(b"HELLO 1024\n")
            self.assertEqual(s.recv(100), b"")

    def test_client_killed_mid_stream_leaves_backend_serving(self):
        code = (
            "import os, socket, sys\n"
            f"sys.path.insert(0, {os.path.join(os.path.dirname(__file__), '..', 'lib')!r})\n"
            "from katatest import hvsock\n"
            f"s, _ = hvsock.hv_connect({self.vm.uds!r}, {PORT_ECHO})\n"
            "print('connected', flush=True)\n"
            "b = os.urandom(1 << 20)\n"
            "while True:\n"
            "    s.sendall(b)\n")
        for sig in (signal.SIGKILL, signal.SIGTERM):
            p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
            try:
                self.assertEqual(p.stdout.readline().strip(), b"connected")
                time.sleep(1.5)  # mid-stream: the echo is backed up both ways
            finally:
                p.send_signal(sig)
                p.wait(30)
                p.stdout.close()
            # The next connections are served.
            errors = []
            echo_rounds(self.vm, 20, errors)
            self.assertEqual(errors, [])
            count, digest = sink(self.vm, b"after the kill")
            self.assertEqual(count, 14)

    def test_guest_initiated_connection_reaches_uds_port_listener(self):
        port = 7000
        path = f"{self.vm.uds}_{port}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        listener.settimeout(60)
        try:
            # The guest connects out to host port 7000 and sinks what we send.
            ctl, _ = self.vm.connect(PORT_DIAL)
            with ctl:
                ctl.sendall(f"{port} sink\n".encode())
                conn, _ = listener.accept()
                data = os.urandom(3 * MIB)
                with conn:
                    conn.settimeout(120)
                    conn.sendall(data)
                    conn.shutdown(socket.SHUT_WR)
                    reply = hvsock.recv_all(conn).decode().split()
                self.assertEqual(int(reply[0]), len(data))
                self.assertEqual(reply[1], hashlib.sha256(data).hexdigest())
                self.assertEqual(hvsock.recv_all(ctl), b"ok\n")
            # And the other way: the guest sources 2 MiB to us.
            ctl, _ = self.vm.connect(PORT_DIAL)
            with ctl:
                ctl.sendall(f"{port} source {2 * MIB}\n".encode())
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(120)
                    blob = hvsock.recv_all(conn)
                self.assertEqual(len(blob), 2 * MIB + 65)
                self.assertEqual(hashlib.sha256(blob[:-65]).hexdigest(), blob[-65:-1].decode())
                self.assertEqual(hvsock.recv_all(ctl), b"ok\n")
        finally:
            listener.close()
            os.unlink(path)
        # No listener on host port 7001: the guest's connect is refused.
        ctl, _ = self.vm.connect(PORT_DIAL)
        with ctl:
            ctl.sendall(b"7001 echo\n")
            self.assertTrue(hvsock.recv_all(ctl).startswith(b"error "))

    def test_memory_hotplug_while_streaming(self):
        """QEMU sends a new memory table (SET_MEM_TABLE) when memory is hot-added; the backend
        remaps while the rings run, and the stream in flight stays byte-exact."""
        before = self.vm.vm.read_log("vsockd").count('"guest memory mapped"')
        data = os.urandom(32 * MIB)
        result = []

        def run():
            result.append(sink(self.vm, data))
        t = threading.Thread(target=run)
        t.start()
        time.sleep(1)
        qmp = self.vm.vm.qmp
        name = f"hp{before}"
        qmp.cmd("object-add", **{"qom-type": "memory-backend-memfd", "id": name,
                                  "size": 128 * MIB, "share": True})
        qmp.cmd("device_add", driver="pc-dimm", id=f"dimm-{name}", memdev=name)
        t.join(600)
        self.assertEqual(result, [(len(data), hashlib.sha256(data).hexdigest())])
        after = self.vm.vm.read_log("vsockd").count('"guest memory mapped"')
        self.assertGreater(after, before, "no new memory table was received")


class VsockMemSlots(unittest.TestCase):
    """The same with CONFIGURE_MEM_SLOTS offered: ADD_MEM_REG instead of SET_MEM_TABLE."""

    def test_stream_and_hotplug_with_mem_slots(self):
        hvsock.require_echo_guest()
        with hvsock.EchoVM(vsockd_args=["--mem-slots", "--log-level", "debug"]) as vm:
            data = os.urandom(8 * MIB)
            self.assertEqual(sink(vm, data), (len(data), hashlib.sha256(data).hexdigest()))
            log = lambda: vm.vm.read_log("vsockd")  # noqa: E731
            before = log().count('"ADD_MEM_REG"')
            self.assertGreater(before, 0)
            vm.vm.qmp.cmd("object-add", **{"qom-type": "memory-backend-memfd", "id": "hp",
                                            "size": 128 * MIB, "share": True})
            vm.vm.qmp.cmd("device_add", driver="pc-dimm", id="dimm-hp", memdev="hp")
            hvsock.wait_until(lambda: log().count('"ADD_MEM_REG"') > before, 30,
                              "ADD_MEM_REG for the hot-added memory")
            got, digest = source(vm, 8 * MIB)
            self.assertEqual(hashlib.sha256(got).hexdigest(), digest)
            self.assertNotIn("SET_MEM_TABLE", vm.vm.read_log("vsockd"))


class VsockRestarts(unittest.TestCase):
    def test_pause_guest_reset_and_qemu_restart_with_the_same_backend(self):
        hvsock.require_echo_guest()
        # reboot=reset: a QMP system_reset reboots the guest instead of ending QEMU.
        with hvsock.EchoVM(extra_qemu=["-action", "reboot=reset"]) as vm:
            pid = vm.vsockd_pid()
            # A connection open when the guest resets is closed; new ones work afterwards.
            s, _ = vm.connect(PORT_ECHO)
            with s:
                s.settimeout(120)
                s.sendall(b"ping")
                self.assertEqual(hvsock.recv_exact(s, 4), b"ping")
                # A pause stops the rings (GET_VRING_BASE) and resumes them from the same
                # index: the connection survives it.
                vm.vm.qmp.cmd("stop")
                s.sendall(b"paused")
                time.sleep(0.5)
                vm.vm.qmp.cmd("cont")
                self.assertEqual(hvsock.recv_exact(s, 6), b"paused")
                self.assertNotIn("the guest reset the device", vm.vm.read_log("vsockd"))
                mark = len(vm.vm.console_text())
                vm.vm.qmp.cmd("system_reset")
                vm.wait_ready(start=mark)
                # The backend saw the driver start over and dropped what the guest forgot.
                hvsock.wait_until(lambda: "the guest reset the device" in vm.vm.read_log("vsockd"),
                                  30, "the backend noticing the device reset")
                self.assertEqual(s.recv(10), b"")
            errors = []
            echo_rounds(vm, 50, errors)
            self.assertEqual(errors, [])

            # QEMU killed and started again: vsockd accepts the new front-end.
            s, _ = vm.connect(PORT_ECHO)
            with s:
                s.settimeout(120)
                vm.vm.restart_qemu()
                self.assertEqual(s.recv(10), b"")  # the old guest's connection is gone
            # The new QEMU may start the console log afresh (logappend=off) or append to it.
            vm.wait_ready(start=max(0, vm.vm.console_text().rfind("QEMU restarted")))
            self.assertEqual(vm.vsockd_pid(), pid)
            self.assertTrue(vm.vsockd_alive())
            errors = []
            echo_rounds(vm, 50, errors)
            self.assertEqual(errors, [])
            data = os.urandom(4 * MIB)
            self.assertEqual(sink(vm, data), (len(data), hashlib.sha256(data).hexdigest()))


if __name__ == "__main__":
    unittest.main()
