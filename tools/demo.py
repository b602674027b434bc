#!/usr/bin/python3
"""`make demo`: boots the guest under QEMU, waits for the agent over hybrid vsock, creates a
sandbox, runs a busybox container that prints `uname -a`, `id` and `cat /proc/self/cgroup`,
shows its output, destroys the sandbox (the guest powers off) and prints the times.

Every call goes through agent-ctl, printed as it is made, so the flow can be replayed by hand.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import katavm  # noqa: E402

BUILD = katavm.BUILD_DIR
AGENT_CTL = os.path.join(BUILD, "bin", "agent-ctl")
INITRD_TEST = os.path.join(katavm.GUEST_DIR, "initrd-test.img")
CID = "demo"
ROOTFS = "/opt/kata-test/busybox"  # inside the test initrd


class Failure(Exception):
    pass


def stage(name):
    print(f"\n== {name}", flush=True)


def ctl(vm, method, req=None, timeout=60, quiet=False):
    body = json.dumps(req or {})
    if not quiet:
        shown = body if len(body) < 160 else body[:157] + "..."
        print(f"$ agent-ctl --addr {vm.agent_addr()} {method} '{shown}'", flush=True)
    p = subprocess.run([AGENT_CTL, "--addr", vm.agent_addr(), "--timeout", str(timeout), method, body],
                       capture_output=True, text=True, timeout=timeout + 30)
    if p.returncode != 0:
        raise Failure(f"{method} failed: {p.stderr.strip()}")
    return json.loads(p.stdout) if p.stdout.strip() else {}


def container_spec():
    return {
        "container_id": CID,
        "exec_id": CID,
        "OCI": {
            "Version": "1.0.2",
            "Process": {
                "Terminal": False,
                "User": {"UID": 0, "GID": 0},
                "Args": ["/bin/sh", "-c", "echo '$ uname -a'; uname -a; echo '$ id'; id; "
                                          "echo '$ cat /proc/self/cgroup'; cat /proc/self/cgroup"],
                "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
                "Cwd": "/",
                "NoNewPrivileges": True,
            },
            "Root": {"Path": ROOTFS, "Readonly": True},
            "Hostname": "demo-container",
            "Mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
            ],
            "Linux": {
                "Namespaces": [{"Type": "mount"}, {"Type": "uts"}, {"Type": "ipc"}, {"Type": "cgroup"}],
                "MaskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            },
        },
    }


def main():
    t0 = time.time()
    for path, what in ((AGENT_CTL, "agent-ctl"), (katavm.os.path.join(katavm.GUEST_DIR, "vmlinuz"), "the kernel"),
                       (INITRD_TEST, "the test initrd")):
        if not os.path.exists(path):
            print(f"demo: {what} is missing ({path}); `make demo` builds it", file=sys.stderr)
            return 1
    vm = katavm.VM(initrd=INITRD_TEST, cmdline=["agent.log=info"], keep_workdir=True)
    print(f"demo: accel={vm.accel} workdir={vm.workdir}")
    stage_name = "boot"
    try:
        stage("boot the guest (QEMU + vsockd)")
        vm.start()
        listening = vm.wait_agent(timeout=120)
        t_listen = time.time()
        print(f"agent listening on {listening['addr']} (agent start {listening['start_ms']:.1f} ms after exec)")
        stage_name = "first Check over hybrid vsock"
        for _ in range(100):
            try:
                ctl(vm, "Check", quiet=True, timeout=10)
                break
            except Failure:
                time.sleep(0.1)
        else:
            raise Failure("the agent did not answer Check over hybrid vsock")
        t_ready = time.time()
        print(f"ready: first Check answered {t_ready - vm.t_start:.2f} s after QEMU started")

        stage_name = "CreateSandbox"
        stage("sandbox")
        ctl(vm, "CreateSandbox", {"hostname": "demo-sandbox", "sandbox_id": "demo-sandbox"})

        stage_name = "container"
        stage("container")
        ctl(vm, "CreateContainer", container_spec())
        ctl(vm, "StartContainer", {"container_id": CID})
        out = b""
        while True:
            r = ctl(vm, "ReadStdout", {"container_id": CID, "exec_id": CID, "len": 65536}, quiet=True)
            data = r.get("data", "")
            if not data:
                break
            import base64
            out += base64.b64decode(data)
        status = ctl(vm, "WaitProcess", {"container_id": CID, "exec_id": CID}).get("status", 0)
        print("\n---- container output ----")
        sys.stdout.write(out.decode(errors="replace"))
        print(f"---- exit status {status} ----")
        ctl(vm, "RemoveContainer", {"container_id": CID, "timeout": 10})
        if status != 0:
            raise Failure(f"the container exited {status}")

        stage_name = "DestroySandbox"
        stage("teardown")
        ctl(vm, "DestroySandbox", {})
        rc = vm.wait_exit(timeout=60)
        if rc != 0:
            raise Failure(f"QEMU exited {rc} after DestroySandbox")
        if "reboot: Power down" not in vm.console_text():
            raise Failure("the console does not show the power-down")
        t_end = time.time()
        print("guest powered off (reboot: Power down), QEMU exited 0")
        print(f"\nboot-to-ready {t_ready - vm.t_start:.2f} s (agent listening after {t_listen - vm.t_start:.2f} s), "
              f"total {t_end - t0:.2f} s")
        vm.keep_workdir = False  # logs are kept only when something failed
        return 0
    except (Failure, RuntimeError, TimeoutError) as e:
        print(f"\ndemo FAILED at stage '{stage_name}': {e}", file=sys.stderr)
        print(f"console log: {vm.console_log}; backend and QEMU logs in {vm.workdir}", file=sys.stderr)
        tail = vm.console_text()[-3000:]
        if tail:
            print("---- console (tail) ----\n" + tail, file=sys.stderr)
        return 1
    finally:
        vm.stop()


if __name__ == "__main__":
    sys.exit(main())
