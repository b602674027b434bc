"""Guest networking on the host: the agent runs inside a network namespace the test makes
(`ip netns exec`), with one end of a veth pair whose other end sits in a second namespace
of the test's own. The agent configures links, addresses, routes and neighbours over
netlink; `ip` in the same namespace shows each effect. Needs root; touches no network
configuration but the namespaces it creates, and removes them even when a test fails."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import AGENT, HostAgent, RpcError  # noqa: E402

MAC = "52:54:00:4b:00:01"
MAC2 = "52:54:00:4b:00:02"


def sh(*argv, check=True):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


class NetnsAgent(HostAgent):
    """The agent started as `ip netns exec NS [wrapper...] kata-agent ...`: every netlink
    request it makes lands in that namespace. `ip netns exec` execs, so the pid is the
    agent's."""

    def __init__(self, netns, wrapper=(), **kw):
        super().__init__(**kw)
        self.netns = netns
        self.wrapper = list(wrapper)

    def start(self, wait=True):
        log = open(self.log_path, "wb")
        argv = ["ip", "netns", "exec", self.netns] + self.wrapper + [
            AGENT, "--server-addr", self.addr, "--log-level", self.log_level] + self.extra_args
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while wait and time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.log()}")
            if os.path.exists(self.sock):
                try:
                    self.call("Check")
                    return self
                except Exception:
                    pass
            time.sleep(0.05)
        if wait:
            raise RuntimeError("agent did not answer Check within 20 s: " + self.log())
        return self


class NetnsTestBase(unittest.TestCase):
    """Per test: namespace NS (the agent's) holding veth kvA (MAC) and kvC (MAC2), and
    namespace PEER holding their peers kvB (10.9.0.1/24) and kvD."""
    wrapper = ()

    def setUp(self):
        katatest.require_root(self)
        tag = f"{os.getpid()}-{self._testMethodName[-12:]}"
        self.ns, self.peer = f"kata-net-{tag}", f"kata-peer-{tag}"
        self.addCleanup(self._remove_netns)
        sh("ip", "netns", "add", self.ns)
        sh("ip", "netns", "add", self.peer)
        for a, b, mac in (("kvA", "kvB", MAC), ("kvC", "kvD", MAC2)):
            sh("ip", "link", "add", a, "netns", self.ns, "address", mac, "type", "veth",
               "peer", "name", b, "netns", self.peer)
            sh("ip", "-n", self.peer, "link", "set", b, "up")
        sh("ip", "-n", self.peer, "addr", "add", "10.9.0.1/24", "dev", "kvB")
        self.agent = NetnsAgent(self.ns, wrapper=self.wrapper_argv())
        self.addCleanup(self._stop_agent)
        self.agent.start()

    def wrapper_argv(self):
        return list(self.wrapper)

    def _stop_agent(self):
        if os.environ.get("KATA_TEST_AGENT_LOG"):
            sys.stderr.write("---- agent log ----\n" + self.agent.log()[-8000:] + "\n")
        self.agent.cleanup()

    def _remove_netns(self):
        for ns in (self.ns, self.peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    # ---- helpers ----
    def ip_json(self, *args, ns=None):
        out = sh("ip", "-j", "-n", ns or self.ns, *args)
        return json.loads(out) if out.strip() else []

    def link(self, name):
        return self.ip_json("-d", "addr", "show", "dev", name)[0]

    def addrs(self, name):
        return sorted(f"{a['local']}/{a['prefixlen']}" for a in self.link(name)["addr_info"]
                      if not a["local"].startswith("fe80:"))

    def routes(self, family="-4"):
        return self.ip_json(family, "route", "show", "table", "main")

    def update_interface(self, **iface):
        return self.agent.call("UpdateInterface", {"interface": iface})

    def setup_eth0(self, addresses=({"address": "10.9.0.2", "mask": "24"},), **kw):
        return self.update_interface(hwAddr=MAC, name="eth0", IPAddresses=list(addresses), **kw)

    def assertRpcError(self, code, fn, *args, contains=()):
        with self.assertRaises(RpcError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code, code, cm.exception.message)
        for c in contains:
            self.assertIn(c, cm.exception.message)
        return cm.exception.message


class Interfaces(NetnsTestBase):
    def test_update_interface_sets_name_mtu_addresses_and_up(self):
        resp = self.setup_eth0(addresses=[{"address": "10.9.0.2", "mask": "24"},
                                          {"family": 1, "address": "fd00:9::2", "mask": "64"}],
                               mtu=1400)
        # What ip sees in the namespace.
        l = self.link("eth0")
        self.assertEqual(l["address"], MAC)
        self.assertEqual(l["mtu"], 1400)
        self.assertIn("UP", l["flags"])
        self.assertEqual(self.addrs("eth0"), ["10.9.0.2/24", "fd00:9::2/64"])
        v4 = [a for a in l["addr_info"] if a["family"] == "inet"][0]
        self.assertEqual(v4.get("broadcast"), "10.9.0.255")
        # The response is the interface as the kernel now has it.
        self.assertEqual(resp["name"], "eth0")
        self.assertEqual(resp["hwAddr"], MAC)
        self.assertEqual(int(resp["mtu"]), 1400)
        self.assertEqual(resp["type"], "veth")
        self.assertTrue(resp["raw_flags"] & 1, "IFF_UP")
        got = sorted((a["family"], a["address"], a["mask"]) for a in resp["IPAddresses"]
                     if not a["address"].startswith("fe80:"))
        self.assertEqual(got, [("v4", "10.9.0.2", "24"), ("v6", "fd00:9::2", "64")])
        # ListInterfaces agrees.
        ifaces = {i["name"]: i for i in self.agent.call("ListInterfaces")["Interfaces"]}
        self.assertIn("lo", ifaces)
        self.assertIn("kvC", ifaces)
        self.assertEqual(ifaces["eth0"]["hwAddr"], MAC)
        self.assertEqual(int(ifaces["eth0"]["mtu"]), 1400)
        self.assertIn({"family": "v4", "address": "10.9.0.2", "mask": "24"}, ifaces["eth0"]["IPAddresses"])
        # The configuration works: the peer namespace reaches the address.
        sh("ip", "netns", "exec", self.peer, "busybox", "ping", "-c", "1", "-W", "5", "10.9.0.2")

    def test_addresses_replace_the_previous_set(self):
        self.setup_eth0(addresses=[{"address": "10.9.0.2", "mask": "24"},
                                   {"address": "10.9.0.3", "mask": "255.255.255.0"}])
        self.assertEqual(self.addrs("eth0"), ["10.9.0.2/24", "10.9.0.3/24"])
        sh("ip", "-n", self.ns, "addr", "add", "192.168.77.7/24", "dev", "eth0")
        self.setup_eth0(addresses=[{"address": "10.9.0.3", "mask": "24"},
                                   {"address": "172.30.0.5", "mask": "16"}])
        self.assertEqual(self.addrs("eth0"), ["10.9.0.3/24", "172.30.0.5/16"])
        self.setup_eth0(addresses=[])
        self.assertEqual(self.addrs("eth0"), [])

    def test_found_by_name_when_no_hwaddr(self):
        resp = self.update_interface(name="kvC", mtu=1300,
                                     IPAddresses=[{"address": "10.20.0.2", "mask": "16"}])
        self.assertEqual(resp["hwAddr"], MAC2)
        self.assertEqual(self.link("kvC")["mtu"], 1300)
        self.assertEqual(self.addrs("kvC"), ["10.20.0.2/16"])

    def test_rename_onto_a_taken_name_swaps_the_names(self):
        self.update_interface(hwAddr=MAC, name="kvC")
        names = {l["address"]: l["ifname"] for l in self.ip_json("link", "show")}
        self.assertEqual(names[MAC], "kvC")
        self.assertEqual(names[MAC2], "kvA")

    def test_raw_flags_noarp_is_applied_and_cleared(self):
        IFF_NOARP = 0x80
        self.setup_eth0(raw_flags=IFF_NOARP)
        self.assertIn("NOARP", self.link("eth0")["flags"])
        self.setup_eth0(raw_flags=0)
        self.assertNotIn("NOARP", self.link("eth0")["flags"])

    def test_errors(self):
        self.assertRpcError("NOT_FOUND", lambda: self.update_interface(hwAddr="52:54:00:ff:ff:ff", name="eth0"),
                            contains=["52:54:00:ff:ff:ff"])
        self.assertRpcError("NOT_FOUND", lambda: self.update_interface(name="nosuch0"), contains=["nosuch0"])
        self.assertRpcError("INVALID_ARGUMENT", lambda: self.setup_eth0(
            addresses=[{"address": "10.9.0.300", "mask": "24"}]), contains=["10.9.0.300"])
        self.assertRpcError("INVALID_ARGUMENT", lambda: self.setup_eth0(
            addresses=[{"address": "10.9.0.2", "mask": "33"}]), contains=["mask", "'33'"])
        self.assertRpcError("INVALID_ARGUMENT", lambda: self.setup_eth0(
            addresses=[{"address": "10.9.0.2", "mask": "255.0.255.0"}]), contains=["255.0.255.0"])
        self.assertRpcError("INVALID_ARGUMENT", lambda: self.update_interface(hwAddr="52:54:00", name="x"),
                            contains=["hwAddr"])
        # Requests rejected as invalid changed nothing: kvA keeps its name.
        self.assertIn("kvA", [l["ifname"] for l in self.ip_json("link", "show")])
        # A netlink failure carries the kernel's own words (veth's maximum MTU is 65535).
        self.assertRpcError("INVALID_ARGUMENT", lambda: self.setup_eth0(mtu=70000),
                            contains=["EINVAL", "mtu"])


class Routes(NetnsTestBase):
    def test_routes_are_installed_in_order_and_listed(self):
        self.setup_eth0(addresses=[{"address": "10.9.0.2", "mask": "24"},
                                   {"family": 1, "address": "fd00:9::2", "mask": "64"}])
        # Given default first: the agent adds link routes, then gateway routes, then the
        # default, or the kernel would refuse the gateways as unreachable.
        routes = [
            {"dest": "", "gateway": "10.10.0.1", "device": "eth0"},
            {"dest": "192.168.50.0/24", "gateway": "10.10.0.1", "device": "eth0", "mtu": 1280},
            {"dest": "10.10.0.0/16", "device": "eth0", "scope": 253, "source": "10.9.0.2"},
            {"dest": "fd00:77::/64", "gateway": "fd00:9::1", "device": "eth0", "family": 1},
        ]
        resp = self.agent.call("UpdateRoutes", {"routes": {"Routes": routes}})
        shown = {r["dst"]: r for r in self.routes()}
        self.assertEqual(shown["default"]["gateway"], "10.10.0.1")
        self.assertEqual(shown["192.168.50.0/24"]["gateway"], "10.10.0.1")
        self.assertIn("mtu", json.dumps(shown["192.168.50.0/24"]))
        self.assertEqual(shown["10.10.0.0/16"]["scope"], "link")
        self.assertEqual(shown["10.10.0.0/16"]["prefsrc"], "10.9.0.2")
        self.assertIn("10.9.0.0/24", shown)  # the address's own route stays
        v6 = {r["dst"]: r for r in self.routes("-6")}
        self.assertEqual(v6["fd00:77::/64"]["gateway"], "fd00:9::1")

        for listed in (resp["Routes"], self.agent.call("ListRoutes")["Routes"]):
            byd = {(r["dest"], r["family"]): r for r in listed}
            self.assertEqual(byd[("", "v4")]["gateway"], "10.10.0.1")
            self.assertEqual(byd[("", "v4")]["device"], "eth0")
            self.assertEqual(byd[("192.168.50.0/24", "v4")]["mtu"], 1280)
            self.assertEqual(byd[("10.10.0.0/16", "v4")]["scope"], 253)
            self.assertEqual(byd[("10.10.0.0/16", "v4")]["source"], "10.9.0.2")
            self.assertEqual(byd[("fd00:77::/64", "v6")]["gateway"], "fd00:9::1")

        # A second update replaces the routes of the managed link.
        self.agent.call("UpdateRoutes", {"routes": {"Routes": [
            {"dest": "", "gateway": "10.9.0.1", "device": "eth0"}]}})
        shown = {r["dst"]: r for r in self.routes()}
        self.assertEqual(sorted(shown), ["10.9.0.0/24", "default"])
        self.assertEqual(shown["default"]["gateway"], "10.9.0.1")
        self.assertNotIn("fd00:77::/64", {r["dst"] for r in self.routes("-6")})
        # And traffic follows it: the peer answers through the default route's link.
        sh("ip", "netns", "exec", self.ns, "busybox", "ping", "-c", "1", "-W", "5", "10.9.0.1")

    def test_route_errors(self):
        self.setup_eth0()
        call = lambda routes: self.agent.call("UpdateRoutes", {"routes": {"Routes": routes}})  # noqa: E731
        self.assertRpcError("NOT_FOUND", call, [{"dest": "10.1.0.0/16", "device": "nosuch0"}],
                            contains=["nosuch0"])
        self.assertRpcError("INVALID_ARGUMENT", call, [{"dest": "10.1.0.0/99", "device": "eth0"}],
                            contains=["10.1.0.0/99"])
        self.assertRpcError("INVALID_ARGUMENT", call, [{"dest": "10.1.0.0/16", "gateway": "10.9.0.x",
                                                        "device": "eth0"}], contains=["10.9.0.x"])
        # The kernel refuses a gateway no route reaches, and says why.
        msg = self.assertRpcError("INTERNAL", call, [{"dest": "10.1.0.0/16", "gateway": "10.99.0.1",
                                                      "device": "eth0"}],
                                  contains=["10.1.0.0/16 via 10.99.0.1", "ENETUNREACH"])
        self.assertIn("gateway", msg.lower())


class Neighbours(NetnsTestBase):
    def test_permanent_neighbours(self):
        self.setup_eth0(addresses=[{"address": "10.9.0.2", "mask": "24"},
                                   {"family": 1, "address": "fd00:9::2", "mask": "64"}])
        self.agent.call("AddARPNeighbors", {"neighbors": {"ARPNeighbors": [
            {"toIPAddress": {"address": "10.9.0.77"}, "device": "eth0", "lladdr": "52:54:00:00:00:77"},
            {"toIPAddress": {"family": 1, "address": "fd00:9::77"}, "device": "eth0",
             "lladdr": "52:54:00:00:00:78"},
        ]}})
        neigh = {n["dst"]: n for n in self.ip_json("neigh", "show", "dev", "eth0")}
        self.assertEqual(neigh["10.9.0.77"]["lladdr"], "52:54:00:00:00:77")
        self.assertIn("PERMANENT", neigh["10.9.0.77"]["state"])
        self.assertEqual(neigh["fd00:9::77"]["lladdr"], "52:54:00:00:00:78")
        self.assertIn("PERMANENT", neigh["fd00:9::77"]["state"])
        # Adding again replaces (a new lladdr), it does not fail.
        self.agent.call("AddARPNeighbors", {"neighbors": {"ARPNeighbors": [
            {"toIPAddress": {"address": "10.9.0.77"}, "device": "eth0", "lladdr": "52:54:00:00:00:79"}]}})
        neigh = {n["dst"]: n for n in self.ip_json("neigh", "show", "dev", "eth0")}
        self.assertEqual(neigh["10.9.0.77"]["lladdr"], "52:54:00:00:00:79")

    def test_neighbour_errors(self):
        call = lambda n: self.agent.call("AddARPNeighbors", {"neighbors": {"ARPNeighbors": n}})  # noqa: E731
        self.assertRpcError("NOT_FOUND", call, [{"toIPAddress": {"address": "10.9.0.7"}, "device": "nosuch0"}],
                            contains=["nosuch0"])
        self.assertRpcError("INVALID_ARGUMENT", call, [{"toIPAddress": {"address": "10.9.0.7"}, "device": "kvA",
                                                        "lladdr": "zz:zz"}], contains=["lladdr"])
        self.assertRpcError("INVALID_ARGUMENT", call, [{"toIPAddress": {"address": "ten"}, "device": "kvA"}],
                            contains=["'ten'"])


FAKE_SAVE = """#!/bin/sh
echo '# fake {tool}'
echo '*filter'
echo ':INPUT ACCEPT [0:0]'
echo 'COMMIT'
"""
FAKE_RESTORE = """#!/bin/sh
[ "$1" = --wait ] || {{ echo "unexpected arguments: $*" >&2; exit 2; }}
cat > {tmp}/{tool}.in
if grep -q BAD {tmp}/{tool}.in; then echo "{tool}: line 2 failed" >&2; exit 1; fi
echo restored
"""


class IptablesAbsent(NetnsTestBase):
    """The agent in a private mount namespace where /usr/sbin and /sbin are empty."""

    def wrapper_argv(self):
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                "mount -t tmpfs none /usr/sbin && { [ -L /sbin ] || mount -t tmpfs none /sbin; } "
                "&& exec \"$@\"", "wrap"]

    def test_failed_precondition_when_the_tools_are_missing(self):
        for req, tool in (({}, "iptables-save"), ({"is_ipv6": True}, "ip6tables-save")):
            self.assertRpcError("FAILED_PRECONDITION", lambda: self.agent.call("GetIPTables", req),
                                contains=[tool, "not in the guest image"])
        self.assertRpcError("FAILED_PRECONDITION",
                            lambda: self.agent.call("SetIPTables", {"data": "KgpDT01NSVQK"}),
                            contains=["iptables-restore"])


class IptablesPresent(NetnsTestBase):
    """Stand-in iptables tools in the agent's private /usr/sbin: the agent runs the image's
    tools, returns their output, feeds SetIPTables' data to restore, and reports failures."""

    def wrapper_argv(self):
        self.tooldir = f"/tmp/kata-net-tools-{os.getpid()}"
        os.makedirs(self.tooldir, exist_ok=True)
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tooldir]))
        for tool in ("iptables", "ip6tables"):
            for kind, text in (("save", FAKE_SAVE), ("restore", FAKE_RESTORE)):
                p = os.path.join(self.tooldir, f"{tool}-{kind}")
                with open(p, "w") as f:
                    f.write(text.format(tool=tool, tmp=self.tooldir))
                os.chmod(p, 0o755)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"mount -t tmpfs none /usr/sbin && cp {self.tooldir}/ip*tables-* /usr/sbin/ "
                "&& exec \"$@\"", "wrap"]

    def test_get_and_set(self):
        import base64
        got = base64.b64decode(self.agent.call("GetIPTables", {})["data"]).decode()
        self.assertIn("# fake iptables\n*filter", got)
        got6 = base64.b64decode(self.agent.call("GetIPTables", {"is_ipv6": True})["data"]).decode()
        self.assertIn("# fake ip6tables", got6)
        rules = "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"
        out = self.agent.call("SetIPTables", {"data": base64.b64encode(rules.encode()).decode()})
        self.assertEqual(base64.b64decode(out["data"]).decode(), "restored\n")
        with open(os.path.join(self.tooldir, "iptables.in")) as f:
            self.assertEqual(f.read(), rules)
        bad = base64.b64encode(b"*filter\nBAD\n").decode()
        self.assertRpcError("INTERNAL", lambda: self.agent.call("SetIPTables", {"is_ipv6": True, "data": bad}),
                            contains=["ip6tables-restore", "exited 1", "line 2 failed"])


if __name__ == "__main__":
    unittest.main()
