#!/usr/bin/python3
"""Exec and the container cycle, the agent against crun 1.8.1 in the same VM (TCG), side by
side in one run:
  exec_true     ExecProcess + WaitProcess of /bin/true in a running container, timed from
                the host (so it includes two RPC round trips over hybrid vsock), against
                `crun exec` of /bin/true timed inside the guest by run-timed;
  cycle_true    CreateContainer + StartContainer + WaitProcess + RemoveContainer of
                /bin/true from the host, against `crun run` of the same bundle in the guest.
The VM boots initrd-crun.img (tests/vm/test_security_vs_crun.py builds it); crun runs in a
privileged container of the agent, its cgroup manager disabled. Skips (exit 0, "skipped"
on stderr) without the guest images, crun or run-timed."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import SRC_DIR, emit, record  # noqa: E402

sys.path.insert(0, os.path.join(SRC_DIR, "tests", "vm"))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def crun_driver(c, cid, cfg, script):
    """Runs `script` in the driver container with config.json on stdin; returns stdout."""
    import json
    from test_security_vs_crun import driver_spec
    c.create(cid, driver_spec("cat > /bundle/config.json && " + script))
    try:
        c.start(cid)
        c.write_stdin(cid, json.dumps(cfg).encode())
        c.close_stdin(cid)
        out = c.read_all(cid).decode()
        err = c.read_all(cid, "stderr").decode()
        code = c.wait(cid)
    finally:
        c.remove(cid)
    if code != 0:
        raise RuntimeError(f"crun driver failed ({code}): {err}")
    return out


def timed_runs(out):
    return [int(line.split()[2]) / 1000.0 for line in out.splitlines()
            if line.startswith("run ") and line.split()[3] == "0"]


def main():
    import unittest
    import katatest
    from katatest.execs import exec_process
    from katatest.vmclient import GuestAgentClient
    import test_security_vs_crun as t
    try:
        katatest.require_guest(katatest.KERNEL)
        katatest.require_vsockd()
        if not os.path.exists(t.RUN_TIMED):
            raise unittest.SkipTest(f"{t.RUN_TIMED} is missing (tests/vm/CMakeLists.txt builds it)")
        t.ensure_crun_initrd()
    except unittest.SkipTest as e:
        print(f"skipped: {e}", file=sys.stderr)
        return 0
    crun = "crun --root /run/crun --cgroup-manager=disabled"
    with katatest.katavm().VM(initrd=t.INITRD_CRUN, memory_mb=1024) as vm:
        vm.wait_agent(timeout=180)
        c = GuestAgentClient(vm)
        try:
            # The agent: exec into a sleeping container.
            spec = t.to_agent_spec(t.probe_config(t.TREE))
            spec["Process"]["Args"] = ["/bin/sleep", "3600"]
            spec["Linux"].pop("Seccomp", None)
            c.create("bench", spec)
            c.start("bench")
            agent_exec = []
            for i in range(RUNS):
                t0 = time.perf_counter()
                exec_process(c, "bench", f"e{i}", ["/bin/true"])
                c.wait("bench", exec_id=f"e{i}")
                agent_exec.append((time.perf_counter() - t0) * 1000)
                c.read_all("bench", exec_id=f"e{i}")
                c.read_all("bench", "stderr", exec_id=f"e{i}")
            c.remove("bench")
            # crun: the same config, its container detached, then timed execs.
            cfg = t.probe_config("/bundle/rootfs")
            cfg["process"]["args"] = ["/bin/sleep", "3600"]
            del cfg["linux"]["seccomp"]
            out = crun_driver(c, "crun-exec", cfg,
                              f"{crun} run -d --bundle /bundle b >/dev/null && "
                              f"run-timed {RUNS} {crun} exec b /bin/true; {crun} kill b KILL")
            crun_exec = timed_runs(out)
            # The whole cycle of a /bin/true container.
            tspec = t.to_agent_spec(t.probe_config(t.TREE))
            tspec["Process"]["Args"] = ["/bin/true"]
            tspec["Linux"].pop("Seccomp", None)
            agent_cycle = []
            for i in range(RUNS):
                t0 = time.perf_counter()
                c.create(f"cyc{i}", tspec)
                c.start(f"cyc{i}")
                c.wait(f"cyc{i}")
                c.remove(f"cyc{i}")
                agent_cycle.append((time.perf_counter() - t0) * 1000)
            cfg["process"]["args"] = ["/bin/true"]
            out = crun_driver(c, "crun-run", cfg, f"run-timed {RUNS} {crun} run --bundle /bundle cyc")
            crun_cycle = timed_runs(out)
        finally:
            c.close()
    note = "TCG guest; the agent timed from the host over hybrid vsock, crun inside the guest"
    emit(record("exec_true_ms", agent_exec, "ms", "crun exec /bin/true (same VM)", crun_exec, note=note))
    emit(record("container_cycle_true_ms", agent_cycle, "ms", "crun run /bin/true (same VM)", crun_cycle,
                note=note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
