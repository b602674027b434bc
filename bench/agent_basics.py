#!/usr/bin/python3
"""The agent's own figures on the host: stripped binary size, idle RSS, exec-to-listening.
References measured in the same run: a static busybox (size, RSS of an idle `sleep`,
exec-to-exit of `true`)."""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BUILD_DIR, emit, record  # noqa: E402

AGENT = os.path.join(BUILD_DIR, "bin", "kata-agent")
BUSYBOX = "/bin/busybox"
RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def start_agent(tmp, i):
    sock = os.path.join(tmp, f"a{i}.sock")
    log = os.path.join(tmp, f"a{i}.log")
    t0 = time.perf_counter()
    p = subprocess.Popen([AGENT, "--server-addr", "unix://" + sock], stdout=open(log, "wb"),
                         stderr=subprocess.STDOUT)
    while True:
        with open(log) as f:
            text = f.read()
        if '"msg":"listening"' in text:
            break
        if p.poll() is not None or time.perf_counter() - t0 > 20:
            raise RuntimeError("agent did not start: " + text)
        time.sleep(0.0005)
    wall_ms = (time.perf_counter() - t0) * 1000
    own_ms = float(re.search(r'"start_ms":([0-9.]+)', text).group(1))
    return p, wall_ms, own_ms


def main():
    size = os.path.getsize(AGENT)
    emit(record("agent_binary_size", [size], "bytes", "6 MiB target (ttrpc-only flavour)",
                [6 * 1024 * 1024], note="full agent (gRPC + ttrpc), static, stripped"))

    tmp = tempfile.mkdtemp(prefix="kata-bench-")
    walls, owns, rss, ref_true, ref_rss = [], [], [], [], []
    try:
        for i in range(RUNS):
            p, wall, own = start_agent(tmp, i)
            time.sleep(0.3)
            rss.append(rss_kb(p.pid))
            p.terminate()
            p.wait()
            walls.append(wall)
            owns.append(own)
            t0 = time.perf_counter()
            subprocess.run([BUSYBOX, "true"])
            ref_true.append((time.perf_counter() - t0) * 1000)
            s = subprocess.Popen([BUSYBOX, "sleep", "10"])
            time.sleep(0.05)
            ref_rss.append(rss_kb(s.pid))
            s.kill()
            s.wait()
    finally:
        subprocess.run(["rm", "-rf", tmp])
    emit(record("agent_start_own_ms", owns, "ms", "none (main() to listening, logged by the agent)",
                [], target=5.0))
    emit(record("agent_exec_to_listening_ms", walls, "ms", "exec-to-exit of static busybox true",
                ref_true))
    emit(record("agent_idle_rss_kb", rss, "KiB", "idle static busybox sleep", ref_rss, target=6 * 1024))


if __name__ == "__main__":
    main()
