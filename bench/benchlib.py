"""Shared helpers for the benchmarks: every benchmark prints JSON records, one per line,
with one schema: name, value, unit, reference (what the value is compared with),
reference_value, ratio (value / reference_value), runs, median, p90, and optionally
target (a PASS/MISS threshold on the ratio or value) and note."""
import json
import os
import statistics
import sys

SRC_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD_DIR = os.environ.get("KATA_BUILD_DIR") or os.path.join(SRC_DIR, "build")
# The ttrpc-only flavour of the agent (-DKATA_GRPC=OFF), built there by `make bench`.
TTRPC_BUILD_DIR = os.environ.get("KATA_TTRPC_BUILD_DIR") or os.path.join(SRC_DIR, "build-bench-ttrpc")
sys.path.insert(0, os.path.join(SRC_DIR, "tests", "lib"))
sys.path.insert(0, os.path.join(SRC_DIR, "tools"))


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def record(name, samples, unit, reference, ref_samples, target=None, note=None, lower_is_better=True):
    """A record from two sample lists measured side by side (value vs reference)."""
    med = statistics.median(samples)
    ref = statistics.median(ref_samples) if ref_samples else None
    r = {
        "name": name, "value": med, "unit": unit, "reference": reference,
        "reference_value": ref, "ratio": (med / ref) if ref else None,
        "runs": len(samples), "median": med, "p90": p90(samples),
        "reference_median": ref, "reference_p90": p90(ref_samples) if ref_samples else None,
        "lower_is_better": lower_is_better,
    }
    if target is not None:
        r["target"] = target
    if note:
        r["note"] = note
    return r


def emit(rec):
    print(json.dumps(rec), flush=True)
