#!/usr/bin/python3
"""`make soak`: long runs against one agent in the guest, looking for leaks.

Boots the test initrd, connects over ttrpc (as the Kata runtime does) and runs:
  1. EXECS cycles of ExecProcess(/bin/true) + WaitProcess + ReadStdout/ReadStderr to their
     end in one long-lived container;
  2. CONTAINERS cycles of CreateContainer + StartContainer + WaitProcess + ReadStdout +
     RemoveContainer of a busybox `true`.
The agent's VmRSS, open fds and threads and the guest's zombies come from GetMetrics
(kata_agent_process_*, kata_guest_zombie_processes), sampled SAMPLES times per phase. The
baseline is taken after a warm-up (WARMUP cycles of each kind: the worker pool and the
allocator's arenas reach their working size).

Checks, each printed PASS/FAIL (exit 1 on a FAIL):
  - fds at the end equal the baseline, and so do threads other than the RPC worker pool's,
    which keeps up to 4 idle workers (kata_agent_rpc_worker_threads);
  - no zombie in the guest at any sample;
  - VmRSS grows by less than 1 MiB between the 5th and the 10th sample of each phase.

  bench/soak.py                       10,000 execs and 1,000 containers (about 9 min under TCG)
  bench/soak.py --execs 300 --containers 60 --out DIR    (the short version in `make test`)
Writes DIR/soak.json and DIR/soak.png (default bench/results).
"""
import argparse
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402,F401  (puts tools/ and tests/lib on sys.path)
import guestlib  # noqa: E402

MIB = 1 << 20
RSS_GROWTH_LIMIT = 1 * MIB
# The RPC worker pool keeps up to this many idle threads (agent/src/rpc/worker_pool.h): how
# many it holds depends on how calls overlapped, not on a leak.
WORKER_RESERVE = 4


def metric(text, name):
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else None


class Soak:
    def __init__(self, g):
        from google.protobuf import empty_pb2
        self.g = g
        self.pb = g.pb
        self.empty = empty_pb2.Empty
        self.t0 = time.monotonic()

    def sample(self, phase, cycle):
        text = self.g.call("GetMetrics", self.pb.GetMetricsRequest(), self.pb.Metrics).metrics
        s = {"phase": phase, "cycle": cycle, "elapsed_s": round(time.monotonic() - self.t0, 1),
             "rss_bytes": metric(text, "kata_agent_process_resident_memory_bytes"),
             "fds": metric(text, "kata_agent_process_open_fds"),
             "threads": metric(text, "kata_agent_process_threads"),
             "workers": metric(text, "kata_agent_rpc_worker_threads"),
             "zombies": metric(text, "kata_guest_zombie_processes"),
             "guest_processes": metric(text, "kata_guest_processes")}
        print(f"soak: {phase:9} {cycle:6}  rss {s['rss_bytes'] / MIB:6.2f} MiB  fds {s['fds']:3}  "
              f"threads {s['threads']:2} ({s['workers']} workers)  zombies {s['zombies']}  ({s['elapsed_s']} s)", file=sys.stderr)
        return s

    def drain(self, cid, eid):
        for method in ("ReadStdout", "ReadStderr"):
            while self.g.call(method, self.pb.ReadStreamRequest(container_id=cid, exec_id=eid, len=65536),
                              self.pb.ReadStreamResponse).data:
                pass

    def wait(self, cid, eid):
        return self.g.call("WaitProcess", self.pb.WaitProcessRequest(container_id=cid, exec_id=eid),
                           self.pb.WaitProcessResponse).status

    def exec_cycle(self, i):
        eid = f"e{i}"
        req = self.g.jf.ParseDict({"container_id": "soak", "exec_id": eid,
                                   "process": {"Args": ["/bin/true"], "Env": ["PATH=/bin"], "Cwd": "/"}},
                                  self.pb.ExecProcessRequest())
        self.g.call("ExecProcess", req, self.empty)
        status = self.wait("soak", eid)
        self.drain("soak", eid)
        if status != 0:
            raise RuntimeError(f"exec {eid}: exit status {status}")

    def container_cycle(self, i):
        cid = f"c{i}"
        self.g.create(cid, ["true"])
        self.g.start(cid)
        status = self.wait(cid, cid)
        self.drain(cid, cid)
        self.g.remove(cid)
        if status != 0:
            raise RuntimeError(f"container {cid}: exit status {status}")

    def phase(self, name, fn, n, samples):
        every = max(1, n // samples)
        out = []
        for i in range(1, n + 1):
            fn(i)
            if i % every == 0 and len(out) < samples:
                out.append(self.sample(name, i))
        return out


def checks(baseline, end, exec_samples, container_samples):
    res = []

    def add(name, ok, detail):
        res.append({"check": name, "pass": bool(ok), "detail": detail})

    add("fds back to the baseline", end["fds"] == baseline["fds"], f"{baseline['fds']} -> {end['fds']}")
    # Threads other than the RPC workers: exactly the baseline; the workers: within the reserve.
    own = {k: s["threads"] - s["workers"] for k, s in (("baseline", baseline), ("end", end))}
    add("threads (RPC workers aside) back to the baseline", own["end"] == own["baseline"],
        f"{own['baseline']} -> {own['end']}")
    add(f"RPC workers within the pool's reserve of {WORKER_RESERVE}", end["workers"] <= WORKER_RESERVE,
        f"{baseline['workers']} -> {end['workers']}")
    all_samples = [baseline, end] + exec_samples + container_samples
    zombies = max(s["zombies"] for s in all_samples)
    add("no zombies", zombies == 0, f"at most {zombies} in {len(all_samples)} samples")
    for name, samples in (("exec", exec_samples), ("container", container_samples)):
        if len(samples) >= 10:
            growth = samples[9]["rss_bytes"] - samples[4]["rss_bytes"]
            add(f"{name} phase: RSS growth sample 5 -> 10 under 1 MiB", growth < RSS_GROWTH_LIMIT,
                f"{growth / 1024:+.0f} KiB ({samples[4]['rss_bytes'] / MIB:.2f} -> {samples[9]['rss_bytes'] / MIB:.2f} MiB)")
        else:
            add(f"{name} phase: RSS growth sample 5 -> 10 under 1 MiB", False, f"only {len(samples)} samples")
    return res


def plot(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: no matplotlib, no plot", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, phase, samples in ((axes[0], "exec + wait", result["exec_samples"]),
                               (axes[1], "container create..remove", result["container_samples"])):
        x = [s["cycle"] for s in samples]
        ax.plot(x, [s["rss_bytes"] / MIB for s in samples], "o-", label="agent VmRSS (MiB)")
        ax.plot(x, [s["fds"] for s in samples], "s-", label="agent fds")
        ax.plot(x, [s["threads"] for s in samples], "^-", label="agent threads")
        ax.plot(x, [s["workers"] for s in samples], "v-", label="of which RPC workers")
        ax.plot(x, [s["zombies"] for s in samples], "x-", label="guest zombies")
        ax.axhline(result["baseline"]["fds"], color="grey", lw=0.5, ls="--")
        ax.set_title(f"{phase}: {samples[-1]['cycle'] if samples else 0} cycles")
        ax.set_xlabel("cycles")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def run(execs, containers, samples=10, warmup=20, memory_mb=512):
    with guestlib.GuestAgent(initrd=guestlib.INITRD_TEST, memory_mb=memory_mb) as g:
        s = Soak(g)
        g.create("soak", ["sleep", "100000"])
        g.start("soak")
        for i in range(warmup):
            s.exec_cycle(f"w{i}")
            s.container_cycle(f"w{i}")
        baseline = s.sample("baseline", 0)
        exec_samples = s.phase("exec", s.exec_cycle, execs, samples)
        container_samples = s.phase("container", s.container_cycle, containers, samples)
        end = s.sample("end", execs + containers)
        g.remove("soak")
        result = {"execs": execs, "containers": containers, "warmup": warmup, "baseline": baseline, "end": end,
                  "exec_samples": exec_samples, "container_samples": container_samples,
                  "elapsed_s": round(time.monotonic() - s.t0, 1)}
    result["checks"] = checks(baseline, end, exec_samples, container_samples)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--execs", type=int, default=10000)
    ap.add_argument("--containers", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    miss = guestlib.missing(guestlib.KERNEL, guestlib.INITRD_TEST)
    if miss:
        print(f"soak: {miss} is missing (make guest)", file=sys.stderr)
        return 2
    result = run(args.execs, args.containers, args.samples)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(result, f, indent=1)
    plot(result, os.path.join(args.out, "soak.png"))
    for c in result["checks"]:
        print(f"soak: {'PASS' if c['pass'] else 'FAIL'}  {c['check']}: {c['detail']}")
    print(f"soak: {args.execs} execs, {args.containers} containers in {result['elapsed_s']} s; "
          f"results in {args.out}/soak.json")
    return 0 if all(c["pass"] for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
