#!/usr/bin/python3
"""Writes the committed seed corpus (tests/fuzz/corpus/<target>/): a few small, valid and
nearly valid inputs per target, so fuzzing starts from the shapes the agent really sees.
The protobuf seeds use the Python stubs of a normal build (build/python):

    tests/fuzz/make_seeds.py [--build-dir build]
"""
import argparse
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def ttrpc_seeds(pb):
    def frame(sid, typ, payload, flags=0, length=None):
        return struct.pack(">IIBB", len(payload) if length is None else length, sid, typ, flags) + payload
    check = pb.ttrpc.Request(service="grpc.Health", method="Check", payload=b"", timeout_nano=10**9)
    req = frame(1, 1, check.SerializeToString())
    write("ttrpc_frame", "check", b"\xff" + req)
    write("ttrpc_frame", "pipelined", b"\xff" + req + frame(3, 1, check.SerializeToString()) + frame(5, 3, b"data"))
    write("ttrpc_frame", "oversized", b"\x10" + frame(7, 1, b"x" * 40) + req)
    write("ttrpc_frame", "empty", b"\xff" + frame(9, 1, b""))
    resp = pb.ttrpc.Response(payload=b"\x08\x01")
    resp.status.code = 5
    resp.status.message = "not found"
    write("ttrpc_frame", "response", b"\xff" + frame(1, 2, resp.SerializeToString()))
    write("ttrpc_frame", "half", b"\xff" + req[:17])


def sniff_seeds():
    write("sniff", "http2", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04")
    write("sniff", "ttrpc", b"\x00\x00\x00\x10\x00\x00\x00\x01\x01\x00")
    write("sniff", "http1", b"GET / HTTP/1.1\r\n")
    write("sniff", "prefix", b"PRI * HT")


def spec(pb, **kw):
    s = pb.oci.Spec(Version="1.0.2")
    s.Process.Args.extend(kw.get("args", ["/bin/sh", "-c", "true"]))
    s.Process.Env.extend(["PATH=/bin:/usr/bin", "TERM=xterm"])
    s.Process.Cwd = kw.get("cwd", "/")
    s.Root.Path = kw.get("root", "rootfs")
    s.Hostname = "c1"
    for dest, typ, src, opts in kw.get("mounts", [("/proc", "proc", "proc", ["nosuid"])]):
        s.Mounts.add(destination=dest, type=typ, source=src, options=opts)
    for t in kw.get("namespaces", ["mount", "uts", "ipc", "pid"]):
        s.Linux.Namespaces.add(Type=t)
    return s


def oci_seeds(pb):
    write("oci_spec", "minimal", spec(pb).SerializeToString())
    s = spec(pb, mounts=[("/proc", "proc", "proc", []), ("/data", "bind", "/tmp", ["rbind", "ro"]),
                         ("/dev/shm", "tmpfs", "shm", ["size=65536k"]), ("/sys", "sysfs", "sysfs", ["ro"])],
             namespaces=["mount", "uts", "ipc", "network", "cgroup", "user"])
    s.Linux.MaskedPaths.extend(["/proc/kcore", "/sys/firmware"])
    s.Linux.ReadonlyPaths.extend(["/proc/sys", "/proc/bus"])
    s.Linux.UIDMappings.add(ContainerID=0, HostID=100000, Size=65536)
    s.Linux.GIDMappings.add(ContainerID=0, HostID=100000, Size=65536)
    s.Linux.Sysctl["net.ipv4.ip_forward"] = "1"
    s.Linux.Devices.add(Path="/dev/vdb", Type="b", Major=254, Minor=16, FileMode=0o660)
    s.Linux.RootfsPropagation = "rslave"
    s.Process.Rlimits.add(Type="RLIMIT_NOFILE", Hard=1024, Soft=1024)
    s.Process.Capabilities.Bounding.extend(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"])
    s.Process.Capabilities.Effective.extend(["CAP_CHOWN"])
    s.Process.NoNewPrivileges = True
    s.Process.User.UID = 1000
    s.Process.User.GID = 1000
    s.Linux.Seccomp.DefaultAction = "SCMP_ACT_ERRNO"
    s.Linux.Seccomp.Architectures.append("SCMP_ARCH_X86_64")
    sc = s.Linux.Seccomp.Syscalls.add(Action="SCMP_ACT_ALLOW")
    sc.Names.extend(["read", "write", "exit_group"])
    sc.Args.add(Index=0, Value=1, Op="SCMP_CMP_EQ")
    write("oci_spec", "full", s.SerializeToString())
    write("oci_spec", "relative-dest", spec(pb, mounts=[("data", "bind", "/tmp", ["bind"])]).SerializeToString())
    write("oci_spec", "escaping-dest", spec(pb, mounts=[("/../../etc", "bind", "/tmp", ["bind"])]).SerializeToString())
    write("oci_spec", "no-args", spec(pb, args=[]).SerializeToString())
    s = spec(pb, root="/abs/rootfs", namespaces=["mount"])
    s.Linux.Namespaces.add(Type="network", Path="/proc/1/ns/net")
    s.Process.Rlimits.add(Type="RLIMIT_BOGUS", Hard=1, Soft=1)
    write("oci_spec", "join-ns-bad-rlimit", s.SerializeToString())


def storage_seeds(pb):
    a = pb.agent
    r = a.CreateContainerRequest(container_id="c1", exec_id="c1")
    r.storages.add(driver="blk", source="02/00", fstype="ext4", options=["ro"], mount_point="/run/kata-containers/c1/rootfs")
    r.storages.add(driver="virtio-fs", source="kataShared", fstype="virtiofs", mount_point="/run/kata-containers/shared/containers")
    st = r.storages.add(driver="ephemeral", source="tmpfs", fstype="tmpfs", options=["size=1048576"], mount_point="/run/kata-containers/sandbox/ephemeral/e1")
    st.fs_group.group_id = 1000
    r.storages.add(driver="9p", source="kataShared", fstype="9p", options=["trans=virtio,version=9p2000.L"], mount_point="/mnt/9p")
    r.devices.add(id="02/00", type="blk", vm_path="/dev/vdb", container_path="/dev/xda")
    r.devices.add(id="0:0", type="scsi", container_path="/dev/sdb")
    r.devices.add(type="mmioblk", vm_path="/dev/vdc", container_path="/dev/xdc")
    r.OCI.CopyFrom(spec(pb))
    r.OCI.Linux.Devices.add(Path="/dev/xda", Type="b", Major=8, Minor=0)
    write("storage", "typical", r.SerializeToString())
    r = a.CreateContainerRequest(container_id="../x")
    r.storages.add(driver="local", mount_point="/a/../../b")
    r.storages.add(driver="", mount_point="/")
    r.devices.add(id="20/00/02.1", type="vfio-pci", container_path="dev/x")
    write("storage", "bad", r.SerializeToString())


def network_seeds(pb):
    a, t = pb.agent, pb.types
    i = a.UpdateInterfaceRequest()
    i.interface.device = "eth0"
    i.interface.name = "eth0"
    i.interface.mtu = 1500
    i.interface.hwAddr = "52:54:00:12:34:56"
    i.interface.devicePath = "02/00"
    i.interface.IPAddresses.add(family=0, address="10.0.2.15", mask="24")
    i.interface.IPAddresses.add(family=1, address="fd00::15", mask="64")
    i.interface.IPAddresses.add(family=0, address="192.168.1.2", mask="255.255.255.0")
    write("network", "interface", b"\x00" + i.SerializeToString())
    r = a.UpdateRoutesRequest()
    r.routes.Routes.add(dest="10.0.2.0/24", device="eth0", source="10.0.2.15", scope=253)
    r.routes.Routes.add(dest="default", gateway="10.0.2.2", device="eth0")
    r.routes.Routes.add(dest="fd00::/64", device="eth0", family=1)
    r.routes.Routes.add(dest="", gateway="fd00::1", device="eth0", family=1, mtu=1400)
    write("network", "routes", b"\x01" + r.SerializeToString())
    n = a.AddARPNeighborsRequest()
    nb = n.neighbors.ARPNeighbors.add(device="eth0", lladdr="52:54:00:aa:bb:cc", state=128)
    nb.toIPAddress.address = "10.0.2.3"
    write("network", "neighbours", b"\x02" + n.SerializeToString())


def cmdline_seeds():
    write("cmdline", "kata", b"tsc=reliable no_timer_check rcupdate.rcu_expedited=1 console=hvc0 quiet "
          b"agent.log=debug agent.debug_console agent.debug_console_vport=1026 agent.log_vport=1025 "
          b"agent.hotplug_timeout=10 agent.container_pipe_size=2097152 agent.server_addr=vsock://-1:1024 "
          b"agent.sniff_timeout=30 agent.memory_reserve_mb=128 agent.policy=/etc/p\n")
    write("cmdline", "quoted", b'agent.server_addr="unix:///run/a b.sock" agent.log=bogus agent.hotplug_timeout=0 agent.x')


def path_seeds():
    for i, p in enumerate([b"\x00/etc/passwd", b"\x01/new/dir/file", b"\x00/abs/x/y", b"\x00/up/../../z",
                           b"\x00/out/escape", b"\x00/a/b", b"\x00/deep/x/back/back/q", b"\x01/deep/x/etc",
                           b"\x00/tmpabs/d", b"\x00/proc/1", b"\x00/dangling/sub", b"\x00relative/path",
                           b"\x00//./a/.//../b/", b"\x01/file/below"]):
        write("rootfs_path", f"p{i:02d}", p)


VSOCK_HDR = struct.Struct("<QQIIIHHIII")
TX_DESC, TX_AVAIL, RX_DESC, RX_AVAIL = 0x0000, 0x0400, 0x1000, 0x1400


def vsock_image(packets, indirect=False, split=False, rx_bufs=4, num_index=3):
    """Two header bytes and a guest memory image: tx packets posted, rx buffers ready."""
    mem = bytearray(0x4000)
    desc_i, data_at = 0, 0x2400
    heads = []

    def put_desc(table, i, addr, length, flags, nxt):
        struct.pack_into("<QIHH", mem, table + 16 * i, addr, length, flags, nxt)

    for h, payload in packets:
        pkt = VSOCK_HDR.pack(*h) + payload
        mem[data_at:data_at + len(pkt)] = pkt
        if indirect:
            table = data_at + len(pkt) + 16 & ~15
            put_desc(table, 0, data_at, 44, 1, 1)
            put_desc(table, 1, data_at + 44, len(payload), 0, 0)
            put_desc(TX_DESC, desc_i, table, 32, 4, 0)
            heads.append(desc_i)
            desc_i += 1
            data_at = table + 32
        elif split and payload:
            put_desc(TX_DESC, desc_i, data_at, 44, 1, desc_i + 1)
            put_desc(TX_DESC, desc_i + 1, data_at + 44, len(payload), 0, 0)
            heads.append(desc_i)
            desc_i += 2
            data_at += len(pkt)
        else:
            put_desc(TX_DESC, desc_i, data_at, len(pkt), 0, 0)
            heads.append(desc_i)
            desc_i += 1
            data_at += len(pkt)
        data_at = (data_at + 15) & ~15
    struct.pack_into("<HH", mem, TX_AVAIL, 0, len(heads))
    for k, head in enumerate(heads):
        struct.pack_into("<H", mem, TX_AVAIL + 4 + 2 * k, head)
    for k in range(rx_bufs):
        put_desc(RX_DESC, k, 0x2000 + 0x100 * k, 0x100, 2, 0)
        struct.pack_into("<H", mem, RX_AVAIL + 4 + 2 * k, k)
    struct.pack_into("<HH", mem, RX_AVAIL, 0, rx_bufs)
    features = 2 if indirect else 0
    return bytes([features, num_index]) + bytes(mem).rstrip(b"\0")


def vsock_seeds():
    G, H = 3, 2
    buf = 262144

    def hdr(op, sport, dport, length=0, flags=0, cid=G):
        return (cid, H, sport, dport, length, 1, op, flags, buf, 0)
    hp = 1 << 30
    write("vsock_tx", "response-rw-shutdown", vsock_image([
        (hdr(2, 1024, hp), b""), (hdr(5, 1024, hp, 5), b"hello"), (hdr(7, 1024, hp), b""),
        (hdr(4, 1024, hp, 0, 3), b"")]))
    write("vsock_tx", "guest-connects", vsock_image([
        (hdr(1, 5000, 1025), b""), (hdr(5, 5000, 1025, 4), b"ping"), (hdr(1, 5002, 1026), b""),
        (hdr(3, 5000, 1025), b"")], split=True))
    write("vsock_tx", "indirect", vsock_image([(hdr(2, 1024, hp), b""), (hdr(5, 1024, hp, 3), b"abc")],
                                              indirect=True))
    write("vsock_tx", "bad", vsock_image([(hdr(9, 1, 2, 70000), b"x" * 8), (hdr(5, 1, 2, 0, 0, 7), b"")],
                                         rx_bufs=0, num_index=1))


def policy_seeds():
    # A document, NUL, then argv words separated by NULs (also read as one CopyFile path).
    write("policy", "full", b'{"version": 1, "allow": ["*"], "deny": ["CreateContainer"], '
          b'"exec": {"allowedArgv": [{"args": ["/bin/echo", "..."]}, {"args": ["sh", "-c", "ls [a-z]*"]}]}, '
          b'"copyFile": {"allowedPaths": ["/run/kata-containers/shared/**", "/etc/*.conf"]}}'
          b'\0/bin/echo\0hello')
    write("policy", "path", b'{"version": 1, "copyFile": {"allowedPaths": ["/a/**"]}}\0/a/./b//../c')
    write("policy", "rego", b"package agent_policy\ndefault ExecProcessRequest := false\n")
    write("policy", "allow_list", b'{"version": 1, "allow": ["Check", "grpc.AgentService/ExecProcess"], "exec": {}}\0true')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(os.path.abspath(args.build_dir), "python"))
    import agent_pb2, oci_pb2, ttrpc_pb2, types_pb2  # noqa: E401

    class pb:
        agent, oci, ttrpc, types = agent_pb2, oci_pb2, ttrpc_pb2, types_pb2
    shutil.rmtree(os.path.join(HERE, "corpus"), ignore_errors=True)
    ttrpc_seeds(pb)
    sniff_seeds()
    oci_seeds(pb)
    storage_seeds(pb)
    network_seeds(pb)
    cmdline_seeds()
    path_seeds()
    vsock_seeds()
    policy_seeds()


if __name__ == "__main__":
    main()
