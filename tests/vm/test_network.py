"""Guest networking in a VM: a virtio-net NIC on QEMU user networking, configured only
through the agent (UpdateInterface, UpdateRoutes); then a container without a network
namespace of its own (so in the sandbox's, the guest's) connects over TCP to a listener
this test runs on the host's loopback: QEMU's user networking maps 10.0.2.2 to it.
A second test hot-plugs a NIC onto a PCIe root port while UpdateInterface waits for it
by its PCI path (Interface.devicePath)."""
import base64
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import RpcError  # noqa: E402

MAC = "52:54:00:12:34:56"
HOTPLUG_MAC = "52:54:00:12:34:99"
ROOTFS = "/opt/kata-test/busybox"  # inside the test initrd


class Listener:
    """A one-shot TCP server on 127.0.0.1: reads a line, answers, closes; records the peer."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(120)
        self.port = self.sock.getsockname()[1]
        self.received = None
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(60)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.received = data.decode(errors="replace")
                conn.sendall(b"hello from the host listener\n")
        except Exception as e:  # reported by the test
            self.error = e

    def close(self):
        self.sock.close()


def container_spec(cid, args):
    return {
        "container_id": cid,
        "exec_id": cid,
        "OCI": {
            "Version": "1.0.2",
            "Process": {"User": {"UID": 0, "GID": 0}, "Args": args, "Cwd": "/",
                        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "Root": {"Path": ROOTFS, "Readonly": True},
            "Hostname": "net-container",
            "Mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
            ],
            # No network namespace: the container shares the sandbox's (the guest's).
            "Linux": {"Namespaces": [{"Type": "mount"}, {"Type": "uts"}, {"Type": "ipc"}]},
        },
    }


class GuestNetwork(unittest.TestCase):
    def setUp(self):
        katatest.require_guest(katatest.INITRD_TEST)
        katatest.require_vsockd()
        self.k = katatest.katavm()

    def boot(self, extra_qemu, cmdline=()):
        vm = self.k.VM(initrd=katatest.INITRD_TEST, cmdline=["agent.log=debug"] + list(cmdline),
                       extra_qemu=extra_qemu)
        self.addCleanup(vm.stop)
        vm.start()
        vm.wait_agent(timeout=120)
        for _ in range(100):
            try:
                self.call(vm, "Check", timeout=10)
                break
            except Exception:
                time.sleep(0.2)
        return vm

    def call(self, vm, method, req=None, timeout=60):
        return katatest.agent_ctl(vm.agent_addr(), method, req or {}, timeout=timeout)

    def run_container(self, vm, cid, args):
        self.call(vm, "CreateContainer", container_spec(cid, args))
        self.call(vm, "StartContainer", {"container_id": cid})
        out = b""
        while True:
            d = self.call(vm, "ReadStdout", {"container_id": cid, "exec_id": cid, "len": 65536}).get("data", "")
            if not d:
                break
            out += base64.b64decode(d)
        status = self.call(vm, "WaitProcess", {"container_id": cid, "exec_id": cid}).get("status", 0)
        self.call(vm, "RemoveContainer", {"container_id": cid, "timeout": 10})
        return status, out.decode(errors="replace")

    def test_user_net_configured_by_the_agent_and_a_container_connects_to_the_host(self):
        vm = self.boot(["-netdev", "user,id=n0,restrict=off",
                        "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"])
        # Before: the NIC is there, down, without addresses.
        ifaces = {i["hwAddr"]: i for i in self.call(vm, "ListInterfaces")["Interfaces"]}
        self.assertIn(MAC, ifaces)
        self.assertFalse(ifaces[MAC].get("IPAddresses"))

        iface = self.call(vm, "UpdateInterface", {"interface": {
            "hwAddr": MAC, "name": "eth0", "mtu": 1500,
            "IPAddresses": [{"family": "v4", "address": "10.0.2.15", "mask": "24"}]}})
        self.assertEqual(iface["name"], "eth0")
        self.assertEqual(iface["hwAddr"], MAC)
        self.assertTrue(iface["raw_flags"] & 1, "IFF_UP")
        self.assertIn({"family": "v4", "address": "10.0.2.15", "mask": "24"}, iface["IPAddresses"])

        routes = self.call(vm, "UpdateRoutes", {"routes": {"Routes": [
            {"dest": "", "gateway": "10.0.2.2", "device": "eth0"},
            {"dest": "10.0.2.0/24", "device": "eth0", "scope": 253, "source": "10.0.2.15"},
        ]}})["Routes"]
        byd = {r["dest"]: r for r in routes if r["family"] == "v4"}
        self.assertEqual(byd[""]["gateway"], "10.0.2.2")
        self.assertEqual(byd["10.0.2.0/24"]["source"], "10.0.2.15")
        listed = {r["dest"]: r for r in self.call(vm, "ListRoutes")["Routes"] if r["family"] == "v4"}
        self.assertEqual(listed[""]["device"], "eth0")

        # The image has no iptables tools.
        with self.assertRaises(RpcError) as cm:
            self.call(vm, "GetIPTables", {})
        self.assertEqual(cm.exception.code, "FAILED_PRECONDITION")

        self.call(vm, "CreateSandbox", {"hostname": "net-sandbox", "sandbox_id": "net-sandbox"})
        listener = Listener()
        self.addCleanup(listener.close)
        t0 = time.time()
        status, out = self.run_container(vm, "netc", [
            "/bin/busybox", "sh", "-c",
            "ip addr show eth0; ip route; "
            f"echo 'hello from the container' | /bin/busybox nc 10.0.2.2 {listener.port}"])
        elapsed = time.time() - t0
        listener.thread.join(30)
        self.assertIsNone(listener.error, listener.error)
        self.assertEqual(status, 0, out)
        # The container saw the agent's configuration, and the host saw the connection.
        self.assertIn("10.0.2.15/24", out)
        self.assertIn("default via 10.0.2.2 dev eth0", out)
        self.assertEqual(listener.received, "hello from the container\n")
        self.assertIn("hello from the host listener", out)
        print(f"\ncontainer -> host TCP over user-net: {elapsed:.2f} s for the whole container run")

    def test_hotplugged_nic_is_awaited_by_pci_path(self):
        vm = self.boot(["-netdev", "user,id=n1,restrict=off"], cmdline=["agent.hotplug_timeout=15"])
        port = [d for bus in vm.qmp.cmd("query-pci") for d in bus["devices"] if d.get("qdev_id") == "rp0"]
        self.assertEqual(len(port), 1, "root port rp0 not found")
        device_path = f"{port[0]['slot']:02x}/00"
        result = {}

        def update():
            try:
                result["iface"] = self.call(vm, "UpdateInterface", {"interface": {
                    "hwAddr": HOTPLUG_MAC, "name": "eth1", "devicePath": device_path,
                    "IPAddresses": [{"address": "10.0.2.16", "mask": "24"}]}}, timeout=90)
            except Exception as e:
                result["error"] = e

        t = threading.Thread(target=update)
        t.start()
        time.sleep(1)  # the call is waiting for the NIC by now
        vm.qmp.cmd("device_add", driver="virtio-net-pci", netdev="n1", mac=HOTPLUG_MAC, bus="rp0", id="nic1")
        t.join(120)
        self.assertNotIn("error", result, result.get("error"))
        iface = result["iface"]
        self.assertEqual(iface["name"], "eth1")
        self.assertEqual(iface["hwAddr"], HOTPLUG_MAC)
        self.assertIn({"family": "v4", "address": "10.0.2.16", "mask": "24"}, iface["IPAddresses"])
        # An unknown PCI path times out naming it.
        with self.assertRaises(RpcError) as cm:
            self.call(vm, "UpdateInterface", {"interface": {"hwAddr": HOTPLUG_MAC, "devicePath": "1f/00"}}, timeout=90)
        self.assertEqual(cm.exception.code, "DEADLINE_EXCEEDED", cm.exception.message)
        self.assertIn("1f/00", cm.exception.message)


if __name__ == "__main__":
    unittest.main(verbosity=2)
