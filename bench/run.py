#!/usr/bin/python3
"""`make bench`: runs every bench/*.py benchmark (each prints JSON records), writes
bench/results/latest.json, bench/results/REPORT.md and PNG plots beside them. Never fails the
build on a figure.

A benchmark is any bench/*.py but this file, soak.py and the helper modules (*lib.py): run with no
arguments, it prints one JSON record per line (benchlib.record's schema) and may print
progress on stderr; exit 0 when it had to skip (say why on stderr). bench/analysis.md, the
written account of what dominates each MISS, is copied into the report.

  bench/run.py [SUBSTRING...]   only the benchmarks whose file name contains one of them
                                (the other benchmarks' records in latest.json are kept;
                                runs of disjoint sets may go on at once)
  bench/run.py --report         REPORT.md and the plots again from latest.json
"""
import datetime
import fcntl
import json
import os
import platform
import subprocess
import tempfile
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SKIP = {"run.py", "soak.py"}  # soak.py: `make soak`, about 9 minutes on its own
ANALYSIS = os.path.join(HERE, "analysis.md")


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def verdict(r):
    t = r.get("target")
    if t is None:
        return ""
    v = r["value"] if r.get("target_on", "value") == "value" else r["ratio"]
    if v is None:
        return "MISS"
    ok = v <= t if r.get("lower_is_better", True) else v >= t
    return "PASS" if ok else "MISS"


def fmt_load(load):
    return ", ".join(f"{x:.2f}" for x in load)


def plots(records):
    """One PNG per benchmark file: for each unit a panel of value-vs-reference bars (median,
    p90 whisker). Returns the file names written (none without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no matplotlib (python3-matplotlib): no plots")
        return []
    by_bench = {}
    for r in records:
        by_bench.setdefault(r.get("bench", "other").replace(".py", ""), []).append(r)
    written = []
    for bench, rs in sorted(by_bench.items()):
        units = sorted({r["unit"] for r in rs})
        fig, axes = plt.subplots(len(units), 1, figsize=(9, 1.2 + 0.55 * len(rs) + 0.6 * len(units)), squeeze=False)
        for ax, unit in zip(axes[:, 0], units):
            ur = [r for r in rs if r["unit"] == unit]
            ys = list(range(len(ur)))
            vals = [r["value"] for r in ur]
            errs = [max(0.0, (r.get("p90") or r["value"]) - r["value"]) for r in ur]
            refs = [r.get("reference_value") or 0 for r in ur]
            ref_errs = [max(0.0, (r.get("reference_p90") or 0) - (r.get("reference_value") or 0)) for r in ur]
            ax.barh([y + 0.2 for y in ys], vals, 0.4, xerr=errs, label="value", color="#3b7dd8")
            ax.barh([y - 0.2 for y in ys], refs, 0.4, xerr=ref_errs, label="reference", color="#b0b0b0")
            for y, r in zip(ys, ur):
                tag = f" x{r['ratio']:.2f}" if r.get("ratio") else ""
                v = verdict(r)
                ax.text(r["value"], y + 0.2, f" {fmt(r['value'])}{tag} {v}", va="center", fontsize=7)
            ax.set_yticks(ys)
            ax.set_yticklabels([r["name"] for r in ur], fontsize=7)
            ax.set_xlabel(unit, fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
        axes[0, 0].set_title(f"{bench}: median (p90 whisker), value vs reference", fontsize=9)
        axes[0, 0].legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        name = f"{bench}.png"
        fig.savefig(os.path.join(RESULTS, name), dpi=90)
        plt.close(fig)
        written.append(name)
    boot = {r["name"]: r for r in records if r["name"].startswith("boot_")}
    stages = ("qemu_to_kernel", "kernel_to_init", "init_to_listening", "listening_to_check")
    if all(f"boot_{st}_ms" in boot for st in stages):
        fig, ax = plt.subplots(figsize=(9, 2.8))
        colors = ("#9e9e9e", "#3b7dd8", "#e0a030", "#50a050")
        for row, key, label in ((1, "value", "our kernel"), (0, "reference_value", "Debian stock kernel")):
            left = 0.0
            for st, c in zip(stages, colors):
                w = boot[f"boot_{st}_ms"].get(key) or 0
                if w:
                    ax.barh(row, w, left=left, color=c, label=st if row == 1 else None)
                    ax.text(left + w / 2, row, f"{w:.0f}", ha="center", va="center", fontsize=7)
                left += w
        ax.set_yticks([0, 1])
        ax.set_yticklabels(["Debian stock kernel\n(up to /init)", "our kernel"], fontsize=8)
        ax.set_xlabel("ms from QEMU start (medians)", fontsize=8)
        ax.set_title("boot breakdown under QEMU", fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4)
        fig.tight_layout()
        fig.savefig(os.path.join(RESULTS, "boot_breakdown.png"), dpi=90)
        plt.close(fig)
        written.append("boot_breakdown.png")
    return written


def run(scripts):
    records, failures = [], []
    for s in scripts:
        print(f"bench: {s}", flush=True)
        p = subprocess.run([sys.executable, os.path.join(HERE, s)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        for line in p.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    r = json.loads(line)
                    r["bench"] = s
                    records.append(r)
                    print(f"  {r['name']}: {fmt(r['value'])} {r['unit']}  ratio {fmt(r.get('ratio'))} {verdict(r)}")
                except json.JSONDecodeError:
                    pass
        if p.returncode != 0:
            failures.append({"bench": s, "rc": p.returncode, "stderr": p.stderr[-2000:]})
            print(f"  {s} failed ({p.returncode}): {p.stderr[-500:]}")
        elif "skipped" in p.stderr:
            print("  " + p.stderr.strip().splitlines()[-1])
    return records, failures


def merge(records, failures, scripts, partial, load_start):
    """Writes latest.json under a lock: a partial run (some benchmarks only) keeps the other
    benchmarks' records, so runs of disjoint sets may go on at once."""
    os.makedirs(RESULTS, exist_ok=True)
    latest = os.path.join(RESULTS, "latest.json")
    with open(os.path.join(tempfile.gettempdir(), "kata-bench-results.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prev, prev_meta = {}, {}
        if partial and os.path.exists(latest):
            with open(latest) as f:
                old = json.load(f)
            prev = {r["name"]: r for r in old["records"] if r.get("bench") not in scripts}
            prev_meta = old.get("meta", {})
        for r in records:
            prev[r["name"]] = r
        merged = sorted(prev.values(), key=lambda r: (r.get("bench", ""), r["name"]))
        load_end = os.getloadavg()
        runs = {k: v for k, v in prev_meta.get("runs", {}).items() if k not in scripts}
        for s in scripts:
            runs[s] = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "loadavg_start": [round(x, 2) for x in load_start],
                       "loadavg_end": [round(x, 2) for x in load_end]}
        fails = [f for f in prev_meta.get("failures", []) if f["bench"] not in scripts] + failures
        meta = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "runs": runs, "failures": fails}
        with open(latest + ".tmp", "w") as f:
            json.dump({"meta": meta, "records": merged}, f, indent=1)
        os.rename(latest + ".tmp", latest)
    return meta, merged


def soak_summary(f):
    """The last `make soak` (bench/soak.py writes soak.json and soak.png), when there is one."""
    path = os.path.join(RESULTS, "soak.json")
    if not os.path.exists(path):
        return
    with open(path) as j:
        s = json.load(j)
    f.write(f"\n## Soak (`make soak`)\n\n{s['execs']} exec cycles and {s['containers']} container cycles "
            f"against one agent in the guest, in {s['elapsed_s']} s (bench/results/soak.json).\n\n")
    f.write("| check | result | detail |\n|---|---|---|\n")
    for c in s["checks"]:
        f.write(f"| {c['check']} | {'PASS' if c['pass'] else 'FAIL'} | {c['detail']} |\n")
    if os.path.exists(os.path.join(RESULTS, "soak.png")):
        f.write("\n![soak](soak.png)\n")


def report(meta, merged):
    figures = plots(merged)
    with open(os.path.join(RESULTS, "REPORT.md"), "w") as f:
        f.write("# Benchmark report\n\n")
        f.write(f"Generated by bench/run.py (`make bench`) on {meta['date']} ({meta['cpus']} CPUs, kernel {meta['kernel']}). "
                "Every figure is the median of its runs, measured side by side with its reference in "
                "the same run; the ratio is value / reference. Targets print PASS/MISS and never fail the build.\n\n")
        f.write("The machine is shared, so read the ratios, not the absolute numbers. Load average "
                "(1, 5, 15 min) at the start and the end of each benchmark:\n\n")
        f.write("| benchmark | finished at | load at start | load at end |\n|---|---|---|---|\n")
        for s, r in sorted(meta.get("runs", {}).items()):
            f.write(f"| {s} | {r['date']} | {fmt_load(r['loadavg_start'])} | {fmt_load(r['loadavg_end'])} |\n")
        f.write("\n")
        targets = [r for r in merged if r.get("target") is not None]
        if targets:
            f.write("## Targets\n\n| target | on | value | verdict |\n|---|---|---|---|\n")
            for r in targets:
                on = r.get("target_on", "value")
                v = r["value"] if on == "value" else r.get("ratio")
                cmp = ">=" if not r.get("lower_is_better", True) else "<="
                f.write(f"| {r['name']} {cmp} {fmt(r['target'])} | {on} | {fmt(v)} | {verdict(r)} |\n")
            f.write("\n")
        f.write("## All figures\n\n")
        f.write("| benchmark | value | unit | p90 | reference | reference value | ratio | runs | target |\n")
        f.write("|---|---|---|---|---|---|---|---|---|\n")
        for r in merged:
            t = f"{fmt(r.get('target'))} {verdict(r)}" if r.get("target") is not None else ""
            f.write(f"| {r['name']} | {fmt(r['value'])} | {r['unit']} | {fmt(r.get('p90'))} | {r.get('reference', '')} "
                    f"| {fmt(r.get('reference_value'))} | {fmt(r.get('ratio'))} | {r.get('runs')} | {t} |\n")
        if figures:
            f.write("\n## Plots\n\nMedian of each benchmark beside its reference; the whisker is the p90.\n\n")
            for name in figures:
                f.write(f"![{name}]({name})\n\n")
        soak_summary(f)
        if os.path.exists(ANALYSIS):
            with open(ANALYSIS) as a:
                f.write("\n" + a.read().strip() + "\n")
        notes = [r for r in merged if r.get("note")]
        if notes:
            f.write("\n## Notes\n\n")
            for r in notes:
                f.write(f"- **{r['name']}**: {r['note']}\n")
        if meta.get("failures"):
            f.write("\n## Benchmarks that failed to run\n\n")
            for fl in meta["failures"]:
                last = fl["stderr"].strip().splitlines()[-1:] or [""]
                f.write(f"- {fl['bench']}: exit {fl['rc']}: {last[0]}\n")


def main():
    args = sys.argv[1:]
    latest = os.path.join(RESULTS, "latest.json")
    if args == ["--report"]:  # the report and plots again from latest.json (after editing analysis.md)
        with open(latest) as f:
            data = json.load(f)
        report(data["meta"], data["records"])
        print("bench: wrote REPORT.md from latest.json")
        return 0
    scripts = sorted(f for f in os.listdir(HERE)
                     if f.endswith(".py") and f not in SKIP and not f.endswith("lib.py"))
    if args:
        scripts = [s for s in scripts if any(o in s for o in args)]
    load_start = os.getloadavg()
    records, failures = run(scripts)
    meta, merged = merge(records, failures, scripts, bool(args), load_start)
    report(meta, merged)
    print(f"bench: wrote {latest} and REPORT.md ({len(merged)} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
