#!/usr/bin/python3
"""A container's stdio through the agent against the raw hybrid-vsock copy, in the same VM.

  stream_read_stdout   a container writes N bytes (`dd if=/dev/zero bs=1M`) to its stdout pipe;
                       the host drains it with ReadStdout calls (ttrpc, one connection)
  stream_write_stdin   the host sends N bytes with WriteStdin calls into a container's
                       `dd of=/dev/null bs=1M`, then CloseStdin; the figure ends when dd
                       has exited (WaitProcess); every WriteStdin's length is checked
  references           vsock-echo (the guest helper of the vsock tests), run in a container of
                       the same guest: `blast` sends N bytes straight to the host, `count`
                       reads N bytes from it; both through the same vsockd and guest vsock
MB/s = N / wall time. Runs alternate between the agent's path and the raw copy, so both see
the same load. The test initrd (busybox, vsock-echo) is booted once.

  BENCH_STREAM_RUNS (default 20) runs; BENCH_STREAM_MIB (default 64) MiB per run;
  BENCH_STREAM_CHUNK (default 1 MiB) bytes per ReadStdout/WriteStdin call.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib  # noqa: E402
import vsock_throughput  # noqa: E402
from benchlib import BUILD_DIR, emit, record  # noqa: E402
from katatest import hvsock  # noqa: E402

RUNS = int(os.environ.get("BENCH_STREAM_RUNS", os.environ.get("BENCH_RUNS", "20")))
MIB = int(os.environ.get("BENCH_STREAM_MIB", "64"))
CHUNK = int(os.environ.get("BENCH_STREAM_CHUNK", str(1 << 20)))
GUEST_BIN = [{"destination": "/guest-bin", "type": "bind", "source": "/usr/bin", "options": ["bind", "ro"]}]
MB = 1e6


def read_stdout(g, cid, n):
    """Runs the writer container and drains its stdout; returns (MB/s, calls)."""
    g.create(cid, ["dd", "if=/dev/zero", f"bs={1 << 20}", f"count={n >> 20}"])
    got, calls = 0, 0
    t0 = time.perf_counter()
    g.start(cid)
    while True:
        d = g.call("ReadStdout", g.pb.ReadStreamRequest(container_id=cid, exec_id=cid, len=CHUNK),
                   g.pb.ReadStreamResponse).data
        calls += 1
        if not d:
            break
        got += len(d)
    secs = time.perf_counter() - t0
    if got != n or g.wait(cid) != 0:
        raise RuntimeError(f"ReadStdout: {got} of {n} bytes")
    g.remove(cid)
    return n / MB / secs, calls


def write_stdin(g, cid, data):
    g.create(cid, ["dd", "of=/dev/null", f"bs={1 << 20}"])
    g.start(cid)
    from google.protobuf import empty_pb2
    t0 = time.perf_counter()
    for off in range(0, len(data), CHUNK):
        chunk = data[off:off + CHUNK]
        while chunk:
            n = g.call("WriteStdin", g.pb.WriteStreamRequest(container_id=cid, exec_id=cid, data=chunk),
                       g.pb.WriteStreamResponse).len
            if not 0 < n <= len(chunk):
                raise RuntimeError(f"WriteStdin: {n} of {len(chunk)} bytes written")
            chunk = chunk[n:]
    g.call("CloseStdin", g.pb.CloseStdinRequest(container_id=cid, exec_id=cid), empty_pb2.Empty)
    if g.wait(cid) != 0:
        raise RuntimeError("WriteStdin: dd failed")
    secs = time.perf_counter() - t0
    g.remove(cid)
    return len(data) / MB / secs


class EchoPorts:
    """vsock_throughput's view of a guest: connect(port) through this guest's vsockd."""

    def __init__(self, g):
        self.uds = g.vm.vsock_uds

    def connect(self, port, timeout=60):
        return hvsock.hv_connect(self.uds, port, timeout)


def raw_from_guest(g, n):
    return vsock_throughput.from_guest(EchoPorts(g), n, hashed=False)


def raw_to_guest(g, data):
    return vsock_throughput.to_guest(EchoPorts(g), data, hashed=False)


def main():
    miss = guestlib.missing(guestlib.KERNEL, guestlib.INITRD_TEST, os.path.join(BUILD_DIR, "bin", "vsockd"))
    if miss:
        print(f"streams: skipped: {miss} is missing (make guest)", file=sys.stderr)
        return 0
    n = MIB << 20
    data = os.urandom(n)
    s = {k: [] for k in ("read", "write", "raw_down", "raw_up")}
    calls = []
    load = [os.getloadavg()[0]]
    with guestlib.GuestAgent(initrd=guestlib.INITRD_TEST) as g:
        # vsock-echo's blast and count listeners, in a container of this guest.
        g.create("echo", ["sh", "-c", f"/guest-bin/vsock-echo listen {hvsock.PORT_BLAST} blast >/dev/null 2>&1 & "
                                      f"exec /guest-bin/vsock-echo listen {hvsock.PORT_COUNT} count >/dev/null 2>&1"],
                 mounts=GUEST_BIN)
        g.start("echo")
        deadline = time.time() + 60
        while True:
            try:
                raw_from_guest(g, 1 << 20)  # also the warm-up
                raw_to_guest(g, data[: 1 << 20])
                break
            except (hvsock.Refused, ConnectionError):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        read_stdout(g, "warm", 1 << 20)
        for i in range(RUNS):
            mbs, c = read_stdout(g, f"r{i}", n)
            s["read"].append(mbs)
            calls.append(c)
            s["raw_down"].append(raw_from_guest(g, n))
            s["write"].append(write_stdin(g, f"w{i}", data))
            s["raw_up"].append(raw_to_guest(g, data))
            load.append(os.getloadavg()[0])
            print(f"streams {i + 1}/{RUNS}: read {s['read'][-1]:.1f} raw {s['raw_down'][-1]:.1f}, "
                  f"write {s['write'][-1]:.1f} raw {s['raw_up'][-1]:.1f} MB/s", file=sys.stderr)
        accel = g.vm.accel
    note = (f"{MIB} MiB per run, {CHUNK >> 10} KiB per call requested (ReadStdout returned "
            f"{n / max(1, sorted(calls)[len(calls) // 2] - 1) / 1024:.0f} KiB per call on average), ttrpc over "
            f"hybrid vsock, QEMU accel={accel}, 1 vCPU; host load average {min(load):.1f}..{max(load):.1f} "
            f"on {os.cpu_count()} CPUs")
    emit(record("stream_read_stdout_mbs", s["read"], "MB/s", "raw vsock guest->host (vsock-echo blast), same VM",
                s["raw_down"], target=0.8, note=note, lower_is_better=False) | {"target_on": "ratio"})
    emit(record("stream_write_stdin_mbs", s["write"], "MB/s", "raw vsock host->guest (vsock-echo count), same VM",
                s["raw_up"], target=0.8, note=note, lower_is_better=False) | {"target_on": "ratio"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
