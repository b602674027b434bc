#!/usr/bin/python3
"""What the idle agent's resident memory is made of, full agent and ttrpc-only flavour side
by side: /proc/PID/smaps summed by mapping (the binary's text, its data, heap, anonymous
mappings: thread stacks and malloc arenas) and the thread count. Host, plain process; not a
benchmark of `make bench` (bench/analysis.md quotes it).

  bench/profile/rss_host.py
"""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import BUILD_DIR, TTRPC_BUILD_DIR  # noqa: E402
from katatest import HostAgent  # noqa: E402


def breakdown(pid):
    sums, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \d+\s*(.*)$", line)
            if m:
                perms, path = m.groups()
                if "kata-agent" in path:
                    name = "binary text" if "x" in perms else "binary data"
                elif path:
                    name = path
                else:
                    name = "anonymous (stacks, arenas)"
                continue
            m = re.match(r"^Rss:\s+(\d+) kB", line)
            if m:
                sums[name] = sums.get(name, 0) + int(m.group(1))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return sums, threads


def main():
    for label, build in (("full", BUILD_DIR), ("ttrpc-only", TTRPC_BUILD_DIR)):
        binary = os.path.join(build, "bin", "kata-agent")
        if not os.path.exists(binary):
            print(f"{label}: {binary} missing")
            continue
        a = HostAgent(agent=binary, log_level="info")
        a.start(wait=False)
        try:
            while "listening" not in a.log():
                time.sleep(0.05)
            time.sleep(1)
            sums, threads = breakdown(a.pid())
        finally:
            a.cleanup()
        total = sum(sums.values())
        parts = ", ".join(f"{k} {v}" for k, v in sorted(sums.items(), key=lambda kv: -kv[1]) if v)
        print(f"{label}: RSS {total} KiB in {threads} threads: {parts}")


if __name__ == "__main__":
    main()
