"""Shared helpers for the host and VM test tiers.

Tests start their own agents (and QEMUs), end them by pid, and remove their sockets,
mounts and temporary directories even when they fail.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("KATA_BUILD_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "build"))
SRC_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(BUILD_DIR, "bin")
AGENT = os.path.join(BIN, "kata-agent")
AGENT_CTL = os.path.join(BIN, "agent-ctl")
PY_PROTO_DIR = os.path.join(BUILD_DIR, "python")


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def agent_ctl(addr, method, request=None, proto="grpc", timeout=60, check=True):
    """Calls one method through agent-ctl. Returns the response as a dict, or raises
    RpcError(code, message) when the agent answers an error (check=True)."""
    req = request if isinstance(request, str) else json.dumps(request or {})
    # The request goes on stdin ("-"): one argv string is capped at 128 KiB (CopyFile chunks).
    p = subprocess.run([AGENT_CTL, "--addr", addr, "--proto", proto, "--timeout", str(timeout), method, "-"],
                       input=req, capture_output=True, text=True, timeout=timeout + 30)
    if p.returncode != 0:
        err = p.stderr.strip()
        # "agent-ctl: NOT_FOUND: message"
        parts = err.split(": ", 2)
        if len(parts) == 3 and parts[0] == "agent-ctl":
            if check:
                raise RpcError(parts[1], parts[2])
            return {"_error": parts[1], "_message": parts[2]}
        raise RuntimeError(f"agent-ctl {method} failed ({p.returncode}): {err}")
    return json.loads(p.stdout) if p.stdout.strip() else {}


def require_root(test):
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (creates namespaces and mounts)")


class HostAgent:
    """The real agent binary as a normal process on a unix socket in a temp dir."""

    def __init__(self, extra_args=(), env=None, log_level="debug", agent=None, own_bundle_dir=False):
        self.agent = agent or AGENT  # another build of the agent (the ttrpc-only flavour)
        self.tmp = tempfile.mkdtemp(prefix="kata-host-")
        self.sock = os.path.join(self.tmp, "agent.sock")
        self.addr = "unix://" + self.sock
        self.log_path = os.path.join(self.tmp, "agent.log")
        self.extra_args = list(extra_args)
        # own_bundle_dir: the bundle base (CopyFile's tree, shared storages) is <tmp>/bundles.
        self.bundles = os.path.join(self.tmp, "bundles") if own_bundle_dir else None
        if self.bundles:
            os.makedirs(self.bundles)
            self.extra_args += ["--bundle-dir", self.bundles]
        self.env = dict(os.environ, **(env or {}))
        self.log_level = log_level
        self.proc = None

    def start(self, wait=True):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.agent, "--server-addr", self.addr, "--log-level", self.log_level]
                                     + self.extra_args, stdout=log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        log.close()
        if wait:
            deadline = time.time() + 20
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"agent exited {self.proc.returncode}: {self.log()}")
                if os.path.exists(self.sock):
                    try:
                        self.call("Check")
                        return self
                    except Exception:
                        pass
                time.sleep(0.05)
            raise RuntimeError("agent did not answer Check within 20 s: " + self.log())
        return self

    def call(self, method, request=None, proto="grpc", timeout=60, check=True):
        return agent_ctl(self.addr, method, request, proto=proto, timeout=timeout, check=check)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def cleanup(self):
        self.stop()
        # Unmount anything left below the temp dir (deepest first), then remove it.
        try:
            with open("/proc/self/mountinfo") as f:
                mps = [l.split()[4] for l in f if l.split()[4].startswith(self.tmp)]
            for mp in sorted(mps, key=len, reverse=True):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        except OSError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except Exception:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.stop()  # first: a leak report is written at exit
        log = self.log()
        if exc[0] is not None:
            sys.stderr.write("---- agent log ----\n" + log[-20000:] + "\n")
        self.cleanup()
        assert_no_sanitizer_report(log)


def assert_no_sanitizer_report(log):
    """In the sanitizer build (make test-sanitize) the agent, its set-up processes included,
    writes ASan/LSan/UBSan reports to its log: any of them fails the test."""
    i = log.find("SUMMARY: ")
    if i >= 0 and "Sanitizer" in log[i:i + 60]:
        start = max(0, i - 8000, log.rfind("=================", 0, i) - 200)
        raise AssertionError("sanitizer report in the agent's log:\n" + log[start:i + 300])


def python_grpc_modules():
    """Imports the Python stubs generated at build time (protoc + grpc_python_plugin)."""
    if PY_PROTO_DIR not in sys.path:
        sys.path.insert(0, PY_PROTO_DIR)
    import agent_pb2, agent_pb2_grpc, health_pb2, health_pb2_grpc  # noqa: E401
    return agent_pb2, agent_pb2_grpc, health_pb2, health_pb2_grpc


def count_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def zombies_of(pid):
    """Zombie children of pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if rest[0] == "Z" and int(rest[1]) == pid:
            out.append(int(d))
    return out


# ---- VM tier ----
GUEST_DIR = os.path.join(BUILD_DIR, "guest")
KERNEL = os.path.join(GUEST_DIR, "vmlinuz")
INITRD = os.path.join(GUEST_DIR, "initrd.img")
INITRD_TEST = os.path.join(GUEST_DIR, "initrd-test.img")


def katavm():
    sys.path.insert(0, os.path.join(SRC_DIR, "tools"))
    import katavm as k
    return k


def require_guest(*paths):
    """Skips the test (saying which file is missing) unless the guest images exist."""
    for p in (KERNEL,) + (paths or (INITRD,)):
        if not os.path.exists(p):
            raise unittest.SkipTest(f"{p} is missing: run `make guest` first")


def require_vsockd():
    p = os.path.join(BIN, "vsockd")
    if not os.path.exists(p):
        raise unittest.SkipTest(f"{p} is missing (the vsock backend is not built)")
