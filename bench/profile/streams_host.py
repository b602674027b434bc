#!/usr/bin/python3
"""Where a ReadStdout/WriteStdin byte goes, measured natively: the (unstripped) agent as a
plain process on the host, a busybox container writing or reading N MiB through its stdio,
drained or fed over ttrpc on the agent's unix socket, with `perf record -g` on the agent.
Needs root (containers); not a benchmark of `make bench` (bench/analysis.md quotes it).

  bench/profile/streams_host.py [read|write] [MIB]      perf report in /tmp/kata-prof-*/
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import guestlib  # noqa: E402
from benchlib import BUILD_DIR  # noqa: E402
from katatest import HostAgent  # noqa: E402
from katatest.containers import build_rootfs  # noqa: E402

CHUNK = 1 << 20


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "read"
    n = int(sys.argv[2] if len(sys.argv) > 2 else "256") << 20
    out = tempfile.mkdtemp(prefix="kata-prof-")
    agent = HostAgent(agent=os.path.join(BUILD_DIR, "kata-agent-unstripped"), log_level="warn")
    agent.start(wait=False)
    try:
        while not os.path.exists(agent.sock):
            time.sleep(0.05)
        time.sleep(0.3)
        root = build_rootfs(os.path.join(agent.tmp, "rootfs"))
        s = socket.socket(socket.AF_UNIX)
        s.connect(agent.sock)
        c = guestlib.Ttrpc(s)
        pb, _, _, jf = guestlib.proto()
        from google.protobuf import empty_pb2
        spec = guestlib.busybox_spec(["dd", "if=/dev/zero", f"bs={CHUNK}", f"count={n >> 20}"] if mode == "read"
                                     else ["dd", "of=/dev/null", f"bs={CHUNK}"])
        spec["Root"]["Path"] = root
        c.call("CreateContainer", jf.ParseDict({"container_id": "prof", "exec_id": "prof", "OCI": spec},
                                               pb.CreateContainerRequest()), empty_pb2.Empty)
        perf = subprocess.Popen(["perf", "record", "-g", "-F", "2000", "-o", os.path.join(out, "perf.data"),
                                 "-p", str(agent.pid())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        t0 = time.perf_counter()
        c.call("StartContainer", pb.StartContainerRequest(container_id="prof"), empty_pb2.Empty)
        calls = 0
        if mode == "read":
            while True:
                d = c.call("ReadStdout", pb.ReadStreamRequest(container_id="prof", exec_id="prof", len=CHUNK),
                           pb.ReadStreamResponse).data
                calls += 1
                if not d:
                    break
        else:
            data = b"\0" * CHUNK
            for _ in range(n // CHUNK):
                c.call("WriteStdin", pb.WriteStreamRequest(container_id="prof", exec_id="prof", data=data),
                       pb.WriteStreamResponse)
                calls += 1
            c.call("CloseStdin", pb.CloseStdinRequest(container_id="prof", exec_id="prof"), empty_pb2.Empty)
        c.call("WaitProcess", pb.WaitProcessRequest(container_id="prof", exec_id="prof"), pb.WaitProcessResponse)
        secs = time.perf_counter() - t0
        perf.send_signal(2)
        perf.wait(30)
        print(f"{mode}: {n / 1e6 / secs:.1f} MB/s, {calls} calls, perf data in {out}/perf.data")
        rep = subprocess.run(["perf", "report", "-i", os.path.join(out, "perf.data"), "--stdio", "--no-children",
                              "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1.5"],
                             capture_output=True, text=True)
        with open(os.path.join(out, "report.txt"), "w") as f:
            f.write(rep.stdout)
        print("\n".join(l for l in rep.stdout.splitlines() if l and not l.startswith("#"))[:4000])
    finally:
        agent.cleanup()


if __name__ == "__main__":
    main()
