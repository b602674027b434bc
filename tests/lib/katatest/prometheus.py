"""A strict parser of the Prometheus text exposition format (version 0.0.4), for the tests
of GetMetrics:

    fams = parse_exposition(text)          # raises ExpositionError on any deviation
    value(fams, "kata_guest_load", window="1m")
"""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)"
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? ({VALUE})(?: (-?\d+))?$")
LABEL_PAIR = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


class ExpositionError(AssertionError):
    pass


def unescape(s):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], s)


def parse_labels(text, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_PAIR.match(text, pos)
        if not m:
            raise ExpositionError(f"bad labels at {text[pos:]!r}: {line!r}")
        name = m.group(1)
        if name in labels or name.startswith("__"):
            raise ExpositionError(f"label {name} repeated or reserved: {line!r}")
        labels[name] = unescape(m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ExpositionError(f"expected ',' in labels: {line!r}")
            pos += 1
            if pos == len(text):  # a trailing comma is allowed
                break
    return labels


def parse_exposition(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}. Raises on any
    deviation: no final newline, unknown comment forms, TYPE after samples, samples of a
    family not contiguous, duplicate series, counters not ending in _total or negative."""
    if not text.endswith("\n"):
        raise ExpositionError("exposition does not end with a newline")
    fams, seen_series, current, closed = {}, set(), None, set()
    for line in text[:-1].split("\n"):
        if line == "":
            raise ExpositionError("empty line")
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({NAME}) (.*)$", line)
            if not m:
                if re.match(r"^# (HELP|TYPE)\b", line):
                    raise ExpositionError(f"malformed {line!r}")
                continue  # a plain comment
            kind, name, rest = m.groups()
            if name != current:
                if current is not None:
                    closed.add(current)
                if name in closed:
                    raise ExpositionError(f"family {name} appears twice")
                current = name
            f = fams.setdefault(name, {"type": "untyped", "help": None, "samples": []})
            if kind == "HELP":
                if f["help"] is not None:
                    raise ExpositionError(f"second HELP for {name}")
                if re.search(r"\\[^\\n]", rest):
                    raise ExpositionError(f"bad escape in HELP: {line!r}")
                f["help"] = rest
            else:
                if f["samples"] or f.get("typed"):
                    raise ExpositionError(f"TYPE for {name} after its samples or repeated")
                if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ExpositionError(f"unknown type {rest!r}")
                f["type"], f["typed"] = rest, True
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ExpositionError(f"not a sample line: {line!r}")
        name, ltext, value = m.group(1), m.group(2) or "", m.group(3)
        if name != current:
            raise ExpositionError(f"sample {name} outside its family (current {current})")
        labels = parse_labels(ltext, line)
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise ExpositionError(f"duplicate series {line!r}")
        seen_series.add(key)
        v = float(value.replace("Inf", "inf").replace("NaN", "nan"))
        f = fams[name]
        if f["type"] == "counter":
            if not name.endswith("_total"):
                raise ExpositionError(f"counter {name} does not end in _total")
            if v < 0 or math.isnan(v):
                raise ExpositionError(f"counter {name} = {value}")
        f["samples"].append((name, labels, v))
    return fams


def value(fams, family, **labels):
    for _, l, v in fams[family]["samples"]:
        if l == labels:
            return v
    raise KeyError(f"{family}{labels}")
