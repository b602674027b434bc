#!/usr/bin/python3
"""The agent's memory in the guest, read from inside (the debug console's shell reads
/proc/1/smaps_rollup): RSS and PSS idle, with 10 and with 50 sleeping
busybox containers; the full agent and the ttrpc-only flavour (-DKATA_GRPC=OFF, built in
build-bench-ttrpc/ by `make bench`), each booted with the same test initrd content.

Each figure is the median of BENCH_RUNS (default 20) readings, 0.1 s apart, of one boot per
flavour, taken after the agent has been idle for 2 s (the containers created and started,
all calls answered). The references: the full agent idle for the container counts and for
the ttrpc-only flavour.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib  # noqa: E402
from benchlib import BUILD_DIR, SRC_DIR, TTRPC_BUILD_DIR, emit, record  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
COUNTS = (10, 50)


def readings(g):
    rss, pss = [], []
    for _ in range(RUNS):
        text = g.shell("cat /proc/1/smaps_rollup")
        # smaps_rollup walks the page tables; VmRSS comes from per-thread counters that are
        # synced lazily and read low for a threaded process (seen: 1.5 MiB below PSS).
        rss.append(guestlib.proc_kb(text, "Rss"))
        pss.append(guestlib.proc_kb(text, "Pss"))
        time.sleep(0.1)
    return rss, pss


def measure(initrd):
    out = {}
    with guestlib.GuestAgent(initrd=initrd, memory_mb=1024,
                             cmdline=["agent.debug_console", f"agent.debug_console_vport={guestlib.CONSOLE_PORT}"]) as g:
        out["start_ms"] = g.listening["start_ms"]
        time.sleep(2)
        out[0] = readings(g)
        n = 0
        for count in COUNTS:
            while n < count:
                g.create(f"s{n}", ["sleep", "100000"])
                g.start(f"s{n}")
                n += 1
            time.sleep(2)
            out[count] = readings(g)
    return out


def ttrpc_initrd(tmp):
    agent = os.path.join(TTRPC_BUILD_DIR, "bin", "kata-agent")
    rootfs = os.path.join(guestlib.GUEST_DIR, "busybox-rootfs")
    if guestlib.missing(agent, rootfs):
        return None
    out = os.path.join(tmp, "initrd-ttrpc.img")
    subprocess.run([os.path.join(SRC_DIR, "initrd", "mkinitrd.py"), "--agent", agent, "--debug", "--out", out,
                    "--tree", f"{rootfs}:/opt/kata-test/busybox"], check=True, capture_output=True)
    return out


def main():
    miss = guestlib.missing(guestlib.KERNEL, guestlib.INITRD_TEST, os.path.join(BUILD_DIR, "bin", "vsockd"))
    if miss:
        print(f"memory: skipped: {miss} is missing (make guest)", file=sys.stderr)
        return 0
    load = [os.getloadavg()[0]]
    full = measure(guestlib.INITRD_TEST)
    load.append(os.getloadavg()[0])
    with tempfile.TemporaryDirectory(prefix="kata-bench-mem-") as tmp:
        initrd = ttrpc_initrd(tmp)
        tt = measure(initrd) if initrd else None
    load.append(os.getloadavg()[0])
    note = (f"guest /proc/1 read through the debug console, 1 vCPU, 1 GiB; host load average "
            f"{min(load):.1f}..{max(load):.1f}")
    emit(record("mem_agent_rss_idle_kb", full[0][0], "KiB", "none", [], target=6 * 1024,
                note=f"full agent (gRPC + ttrpc), idle in the guest; {note}"))
    emit(record("mem_agent_pss_idle_kb", full[0][1], "KiB", "the agent's RSS", full[0][0],
                note=f"full agent, idle; PSS from /proc/1/smaps_rollup; {note}"))
    for c in COUNTS:
        emit(record(f"mem_agent_rss_{c}_containers_kb", full[c][0], "KiB", "the full agent idle, same boot",
                    full[0][0], note=f"{c} sleeping busybox containers; {note}"))
        emit(record(f"mem_agent_pss_{c}_containers_kb", full[c][1], "KiB", "the full agent's PSS idle",
                    full[0][1], note=f"{c} sleeping busybox containers; {note}"))
    if tt:
        emit(record("mem_agent_rss_idle_kb_ttrpc_only", tt[0][0], "KiB", "the full agent idle",
                    full[0][0], target=3 * 1024, note=f"ttrpc-only flavour, idle in the guest; {note}")
             | {"target_on": "value"})
        emit(record("mem_agent_pss_idle_kb_ttrpc_only", tt[0][1], "KiB", "the full agent's PSS idle",
                    full[0][1], note=f"ttrpc-only flavour; {note}"))
        emit(record("agent_start_in_guest_ms_ttrpc_only", [tt["start_ms"]], "ms", "the full agent, same initrd",
                    [full["start_ms"]], note=f"start_ms of the listening line, one boot of each flavour (the "
                                             f"boot benchmark has 20 of the full one); {note}"))
        for c in COUNTS:
            emit(record(f"mem_agent_rss_{c}_containers_kb_ttrpc_only", tt[c][0], "KiB",
                        "the full agent, same count", full[c][0], note=f"ttrpc-only flavour; {note}"))
    else:
        print("memory: the ttrpc-only flavour is not built (make bench builds build-bench-ttrpc/)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
