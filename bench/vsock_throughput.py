#!/usr/bin/python3
"""vsock throughput through our vhost-user backend (vsockd): MB/s host -> guest and
guest -> host over one hybrid-vsock stream to the vsock-echo helper in the guest, next to a
unix socketpair copy of the same bytes in the same run (the reference: what a host-local
byte stream costs on this machine).

  bench/vsock_throughput.py [--mib 32] [--runs 5]

vsock_host_to_guest / vsock_guest_to_host: the guest's `count` reads to end of stream and
answers the byte count (checked); its `blast` sends N bytes (counted). No hashing in the
guest: the transport and the guest's socket calls only.
vsock_*_sha256: the same through `sink` / `source`, which hash every byte in the guest (SHA-256,
checked on the host): end-to-end, byte-exact, and much slower under TCG.
Each figure is N / wall time from the first byte written to the last read. Under TCG the guest
CPU, not the backend, sets the pace: the note says which accelerator ran.
"""
import argparse
import hashlib
import os
import socket
import sys
import threading
import time

import benchlib
from katatest import hvsock

MB = 1e6


def socketpair_copy(data):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        def writer():
            a.sendall(data)
            a.shutdown(socket.SHUT_WR)
        t0 = time.perf_counter()
        t = threading.Thread(target=writer)
        t.start()
        got = hvsock.recv_all(b)
        secs = time.perf_counter() - t0
        t.join()
    assert got == data
    return len(data) / MB / secs


def to_guest(vm, data, hashed):
    s, _ = vm.connect(hvsock.PORT_SINK if hashed else hvsock.PORT_COUNT)
    with s:
        s.settimeout(900)
        t0 = time.perf_counter()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        reply = hvsock.recv_all(s).decode().split()
        secs = time.perf_counter() - t0
    if int(reply[0]) != len(data) or (hashed and reply[1] != hashlib.sha256(data).hexdigest()):
        raise RuntimeError(f"host->guest stream corrupted: {reply}")
    return len(data) / MB / secs


def from_guest(vm, n, hashed):
    s, _ = vm.connect(hvsock.PORT_SOURCE if hashed else hvsock.PORT_BLAST)
    with s:
        s.settimeout(900)
        t0 = time.perf_counter()
        s.sendall(f"{n}\n".encode())
        blob = hvsock.recv_all(s)
        secs = time.perf_counter() - t0
    if hashed:
        data, digest = blob[:-65], blob[-65:-1].decode()
        if len(data) != n or hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError("guest->host stream corrupted")
    elif len(blob) != n:
        raise RuntimeError(f"guest->host: {len(blob)} of {n} bytes")
    return n / MB / secs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=32, help="stream size per run (MiB)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    try:
        hvsock.require_echo_guest()
    except Exception as e:  # unittest.SkipTest
        print(f"vsock_throughput: skipped: {e}", file=sys.stderr)
        return 0
    n = args.mib << 20
    data = os.urandom(n)
    s = {k: [] for k in ("up", "down", "up_sha", "down_sha", "ref_up", "ref_down")}
    with hvsock.EchoVM() as vm:
        accel = vm.vm.accel
        to_guest(vm, data[: 1 << 20], False)  # warm-up: page in the guest's buffers
        for _ in range(args.runs):
            s["up"].append(to_guest(vm, data, False))
            s["ref_up"].append(socketpair_copy(data))
            s["down"].append(from_guest(vm, n, False))
            s["ref_down"].append(socketpair_copy(data))
            s["up_sha"].append(to_guest(vm, data, True))
            s["down_sha"].append(from_guest(vm, n, True))
    ref = "unix socketpair copy (same run)"
    note = (f"{args.mib} MiB per run, QEMU accel={accel}, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; reference: a unix socketpair "
            "copy of the same bytes")
    for name, key, rkey, extra in (
            ("vsock_host_to_guest", "up", "ref_up", "guest counts the bytes"),
            ("vsock_guest_to_host", "down", "ref_down", "guest writes a pre-filled buffer"),
            ("vsock_host_to_guest_sha256", "up_sha", "ref_up", "guest hashes every byte (SHA-256)"),
            ("vsock_guest_to_host_sha256", "down_sha", "ref_down", "guest generates and hashes every byte")):
        benchlib.emit(benchlib.record(name, s[key], "MB/s", ref, s[rkey], note=f"{note}; {extra}",
                                      lower_is_better=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
