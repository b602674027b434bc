#!/usr/bin/python3
"""Health.Check round trips per second against one agent on a unix socket, over gRPC and over
ttrpc, with 1 and with 8 connections.

Each connection is one `agent-ctl --repeat N Check` process (one connection, one call at a
time, back to back); with 8 connections the rate is the sum of the 8 processes' rates, all
running at once. Runs alternate between the protocols so both see the same machine load.
The ttrpc records use gRPC with the same number of connections as their reference.

  BENCH_RUNS (default 20) runs of BENCH_CALLS (default 2000) calls per connection.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import BUILD_DIR, emit, record  # noqa: E402

AGENT = os.path.join(BUILD_DIR, "bin", "kata-agent")
AGENT_CTL = os.path.join(BUILD_DIR, "bin", "agent-ctl")
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
CALLS = int(os.environ.get("BENCH_CALLS", "2000"))


def rate(addr, proto, conns, calls):
    procs = [subprocess.Popen([AGENT_CTL, "--addr", addr, "--proto", proto, "--repeat", str(calls), "Check"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(conns)]
    total = 0.0
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"agent-ctl --proto {proto} failed: {err}")
        total += json.loads(out)["calls_per_second"]
    return total


def main():
    tmp = tempfile.mkdtemp(prefix="kata-bench-rpc-")
    sock = os.path.join(tmp, "agent.sock")
    agent = subprocess.Popen([AGENT, "--server-addr", "unix://" + sock, "--log-level", "warn"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while not os.path.exists(sock):
            if agent.poll() is not None or time.time() > deadline:
                raise RuntimeError("the agent did not start")
            time.sleep(0.01)
        addr = "unix://" + sock
        samples = {(p, c): [] for p in ("grpc", "ttrpc") for c in (1, 8)}
        rate(addr, "ttrpc", 1, 200)  # warm-up: worker threads, page cache
        rate(addr, "grpc", 1, 200)
        for _ in range(RUNS):
            for conns in (1, 8):
                for proto in ("grpc", "ttrpc"):
                    samples[(proto, conns)].append(rate(addr, proto, conns, CALLS))
        load = os.getloadavg()[0]
        for conns in (1, 8):
            note = (f"{CALLS} sequential calls per connection, one agent-ctl process per connection; "
                    f"{os.cpu_count()} CPUs shared by client and agent, load average {load:.1f}")
            emit(record(f"rpc_check_per_s_grpc_{conns}conn", samples[("grpc", conns)], "calls/s", "none", [],
                        note=note, lower_is_better=False))
            emit(record(f"rpc_check_per_s_ttrpc_{conns}conn", samples[("ttrpc", conns)], "calls/s",
                        f"gRPC, {conns} connection(s), same run", samples[("grpc", conns)],
                        note=note, lower_is_better=False))
    finally:
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
