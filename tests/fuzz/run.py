#!/usr/bin/python3
"""Builds and runs the libFuzzer targets of tests/fuzz.

    run.py            `make fuzz`: each target for a fixed number of inputs (--runs), starting
                      from its seed corpus; totals to bench/results/fuzz.json
    run.py --smoke    `make test`: every seed and regression input replayed, then a few
                      seconds of fuzzing per target (--seconds)

The fuzz build is its own CMake configuration (build-fuzz/: clang, -fsanitize=fuzzer,
address, undefined; dynamically linked). New inputs go to a temporary directory, never into
the committed corpus. A crash leaves its input in build-fuzz/fuzz-artifacts/<target>/; the
fix is committed with that input under tests/fuzz/regressions/<target>/ (replayed by every
run). Exit status: 0 when no target crashed, 1 otherwise, 77 (skip) with --no-build when the
fuzz build is missing.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
TARGETS = ["ttrpc_frame", "sniff", "oci_spec", "storage", "network", "cmdline", "rootfs_path",
           "vsock_tx", "policy"]
# Longest input each target needs; keeps mutation where it matters.
MAX_LEN = {"vsock_tx": 16384, "rootfs_path": 600, "cmdline": 4096, "sniff": 64}
# rootfs_path makes and removes real directories for each input (about 100 times slower
# than the pure targets): it runs a tenth of the inputs in a full pass.
RUNS_DIVISOR = {"rootfs_path": 10}


def configure_and_build(build_dir, jobs):
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", SRC, "-B", build_dir, "-DCMAKE_C_COMPILER=clang",
                        "-DCMAKE_CXX_COMPILER=clang++", "-DKATA_FUZZ=ON", "-DKATA_TESTS=OFF",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only",
                        "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only"],
                       check=True, stdout=subprocess.DEVNULL)
    p = subprocess.run(["cmake", "--build", build_dir, "-j", str(jobs), "--target", "fuzz-targets"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-20000:] + p.stderr[-20000:])
        raise SystemExit("fuzz: the fuzz build failed")


def inputs_in(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def run_target(name, binary, args, log_dir, artifacts):
    """Runs one target; returns {inputs, crashes, seconds, artifacts}."""
    seeds = os.path.join(HERE, "corpus", name)
    regressions = os.path.join(HERE, "regressions", name)
    art_dir = os.path.join(artifacts, name)
    os.makedirs(art_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"kata-fuzz-{name}-")
    env = dict(os.environ, TMPDIR=work + ".tmp")
    os.makedirs(env["TMPDIR"], exist_ok=True)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    total_inputs, crashes, found = 0, 0, []
    runs_left = max(1, args.runs // RUNS_DIVISOR.get(name, 1))
    start = time.time()
    log_path = os.path.join(log_dir, name + ".log")
    try:
        with open(log_path, "w") as log:
            for attempt in range(6):  # a crash ends a run: go on with the inputs left
                cmd = [binary, f"-artifact_prefix={art_dir}/", "-print_final_stats=1",
                       "-timeout=10", "-rss_limit_mb=2048", f"-max_len={MAX_LEN.get(name, 8192)}"]
                if args.smoke:
                    cmd.append(f"-max_total_time={args.seconds}")
                else:
                    cmd += [f"-runs={runs_left}", f"-seed={attempt + 1}"]
                cmd += [work] + [d for d in (seeds, regressions) if os.path.isdir(d)]
                before = set(os.listdir(art_dir))
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace", env=env, cwd=work)
                log.write(f"$ {' '.join(cmd)}\n{p.stdout}\n")
                m = re.findall(r"stat::number_of_executed_units:\s*(\d+)", p.stdout)
                n = int(m[-1]) if m else 0
                total_inputs += n
                if p.returncode == 0:
                    break
                crashes += 1
                new = sorted(set(os.listdir(art_dir)) - before)
                found += [os.path.join(art_dir, f) for f in new]
                tail = "\n".join(p.stdout.splitlines()[-40:])
                print(f"fuzz: {name} crashed (exit {p.returncode}); input: {new or '?'}\n{tail}",
                      file=sys.stderr)
                if args.smoke:
                    break
                runs_left -= n
                if runs_left <= 0:
                    break
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(work + ".tmp", ignore_errors=True)
    return {"inputs": total_inputs, "crashes": crashes, "seconds": round(time.time() - start, 1),
            "seeds": len(inputs_in(seeds)), "regressions": len(inputs_in(regressions)),
            "artifacts": [os.path.relpath(f, SRC) for f in found], "log": os.path.relpath(log_path, SRC)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="short pass (make test)")
    ap.add_argument("--runs", type=int, default=100000, help="inputs per target (full pass)")
    ap.add_argument("--seconds", type=int, default=4, help="fuzzing time per target (smoke)")
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build-fuzz"))
    ap.add_argument("--no-build", action="store_true", help="use the fuzz build as it is")
    ap.add_argument("--build-only", action="store_true", help="configure and build, run nothing")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default=None, help="results JSON (full pass: bench/results/fuzz.json)")
    ap.add_argument("targets", nargs="*", default=TARGETS)
    args = ap.parse_args()

    build_dir = os.path.abspath(args.build_dir)
    if not args.no_build:
        configure_and_build(build_dir, args.jobs)
        if args.build_only:
            return 0
    bins = {t: os.path.join(build_dir, "fuzz", "fuzz_" + t) for t in args.targets}
    missing = [b for b in bins.values() if not os.access(b, os.X_OK)]
    if missing:
        print(f"SKIPPED: the fuzz build is missing {', '.join(missing)} (make fuzz-build)")
        return 77
    log_dir = os.path.join(build_dir, "fuzz-logs")
    os.makedirs(log_dir, exist_ok=True)
    artifacts = os.path.join(build_dir, "fuzz-artifacts")

    results = {}
    for t in args.targets:
        r = run_target(t, bins[t], args, log_dir, artifacts)
        results[t] = r
        print(f"fuzz: {t:12s} {r['inputs']:>9} inputs  {r['crashes']} crashes  {r['seconds']:6.1f} s"
              f"  ({r['seeds']} seeds, {r['regressions']} regressions)")
    failed = [t for t, r in results.items() if r["crashes"]]
    out = args.out or (None if args.smoke else os.path.join(SRC, "bench", "results", "fuzz.json"))
    if out:
        doc = {
            "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "make fuzz" if not args.smoke else "run.py --smoke",
            "mode": "smoke" if args.smoke else "full",
            "runs_per_target": None if args.smoke else args.runs,
            "seconds_per_target": args.seconds if args.smoke else None,
            "targets": results,
            "totals": {"inputs": sum(r["inputs"] for r in results.values()),
                       "crashes": sum(r["crashes"] for r in results.values())},
        }
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"fuzz: totals in {os.path.relpath(out, SRC)}")
    print(f"fuzz: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
