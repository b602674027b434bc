#!/usr/bin/python3
"""The agent's own figures on the host (a plain process on a unix socket): idle RSS and
exec-to-listening, of the full agent and of the ttrpc-only flavour (build-bench-ttrpc/),
started alternately. References measured in the same run: a static busybox (RSS of an idle
`sleep`, exec-to-exit of `true`) and, for the ttrpc-only flavour, the full agent. Sizes are
bench/sizes.py's."""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BUILD_DIR, TTRPC_BUILD_DIR, emit, record  # noqa: E402

AGENT = os.path.join(BUILD_DIR, "bin", "kata-agent")
AGENT_TTRPC = os.path.join(TTRPC_BUILD_DIR, "bin", "kata-agent")
BUSYBOX = "/bin/busybox"
RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def start_agent(tmp, i, agent=AGENT):
    sock = os.path.join(tmp, f"a{i}.sock")
    log = os.path.join(tmp, f"a{i}.log")
    t0 = time.perf_counter()
    p = subprocess.Popen([agent, "--server-addr", "unix://" + sock], stdout=open(log, "wb"),
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


def idle_rss(tmp, i, agent):
    p, wall, own = start_agent(tmp, i, agent)
    time.sleep(0.3)
    rss = rss_kb(p.pid)
    p.terminate()
    p.wait()
    return wall, own, rss


def main():
    tmp = tempfile.mkdtemp(prefix="kata-bench-")
    walls, owns, rss, ref_true, ref_rss = [], [], [], [], []
    tt = {"wall": [], "own": [], "rss": []}
    have_tt = os.path.exists(AGENT_TTRPC)
    try:
        for i in range(RUNS):
            wall, own, r = idle_rss(tmp, i, AGENT)
            walls.append(wall)
            owns.append(own)
            rss.append(r)
            if have_tt:
                wall, own, r = idle_rss(tmp, f"t{i}", AGENT_TTRPC)
                tt["wall"].append(wall)
                tt["own"].append(own)
                tt["rss"].append(r)
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
    note = f"on the host, a plain process; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    emit(record("agent_start_own_ms", owns, "ms", "none (main() to listening, logged by the agent)",
                [], target=5.0, note=note))
    emit(record("agent_exec_to_listening_ms", walls, "ms", "exec-to-exit of static busybox true",
                ref_true, note=note))
    emit(record("agent_idle_rss_kb", rss, "KiB", "idle static busybox sleep", ref_rss, target=6 * 1024,
                note=note) | {"target_on": "value"})
    if have_tt:
        emit(record("agent_start_own_ms_ttrpc_only", tt["own"], "ms", "the full agent", owns, target=5.0,
                    note=note) | {"target_on": "value"})
        emit(record("agent_idle_rss_kb_ttrpc_only", tt["rss"], "KiB", "the full agent", rss, target=3 * 1024,
                    note=note) | {"target_on": "value"})
    else:
        print(f"agent_basics: {AGENT_TTRPC} is missing: no ttrpc-only figures", file=sys.stderr)


if __name__ == "__main__":
    main()
