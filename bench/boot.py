#!/usr/bin/python3
"""Boot breakdown under QEMU, our kernel against Debian's stock kernel with the same
production initrd, booted alternately in the same run.

Stages of one boot (host clock from QEMU's start; guest clock = CLOCK_BOOTTIME, which the
agent logs as boottime_ms on its "starting" and "listening" lines):
  qemu_to_kernel     QEMU start -> the kernel's clock starts: host time the "starting" line
                     appeared minus its boottime_ms (firmware, loading kernel and initrd,
                     decompression)
  first_console      QEMU start -> the first byte on the serial console (host clock; with
                     `quiet`, our kernel prints nothing before /init)
  kernel_to_init     the kernel's clock at the agent's "starting" line (guest clock; /init
                     includes the re-root off the initramfs and the re-exec)
  init_to_listening  "starting" -> "listening" (guest clock)
  agent_start        main() to listening as the agent measures it (start_ms): the target
  listening_to_check the "listening" line -> the first Check answered over hybrid vsock
                     (host clock; a new connection through vsockd, ttrpc)
  qemu_to_check      QEMU start -> first Check answered
The stock kernel has virtio (and vsock) only as modules, so its boot is compared up to
/init; the agent then stops (no AF_VSOCK) and the VM powers off.

  BENCH_RUNS (default 20) boots of each kernel.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib  # noqa: E402
from benchlib import emit, record  # noqa: E402
from katatest import hvsock  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
HERE = os.path.dirname(os.path.abspath(__file__))
LINE = re.compile(r'\{[^\n]*"msg":"(starting|listening)"[^\n]*\}\r?\n')


def boot_once(kernel, want_check):
    vm = guestlib.katavm.VM(kernel=kernel, initrd=guestlib.INITRD, cmdline=["agent.log=info"])
    marks, lines = {}, {}
    try:
        vm.start()
        t0 = vm.t_start
        deadline = time.time() + 180
        need = ("starting", "listening") if want_check else ("starting",)
        while not all(k in lines for k in need):
            with open(vm.console_log, "rb") as f:
                text = f.read().decode(errors="replace")
            now = time.time()
            if text and "first_console" not in marks:
                marks["first_console"] = now - t0
            for m in LINE.finditer(text):
                if m.group(1) not in lines:
                    lines[m.group(1)] = json.loads(m.group(0))
                    marks[m.group(1)] = now - t0
            if now > deadline or vm.procs["qemu"].poll() is not None:
                raise RuntimeError(f"boot of {kernel} did not reach {need}: {text[-2000:]}")
            time.sleep(0.001)
        if want_check:
            while True:
                try:
                    c = guestlib.Ttrpc.hvsock(vm.vsock_uds, timeout=30)
                    _, hpb, _, _ = guestlib.proto()
                    c.call("Check", hpb.CheckRequest(), hpb.HealthCheckResponse, service="grpc.Health")
                    c.close()
                    break
                except (hvsock.Refused, ConnectionError, OSError):
                    if time.time() > deadline:
                        raise
                    time.sleep(0.001)
            marks["check"] = time.time() - t0
    finally:
        vm.stop()
    st = lines["starting"]["boottime_ms"]
    out = {"first_console": marks["first_console"] * 1e3, "kernel_to_init": st,
           "qemu_to_kernel": marks["starting"] * 1e3 - st, "qemu_to_init": marks["starting"] * 1e3}
    if want_check:
        li = lines["listening"]
        out.update({"init_to_listening": li["boottime_ms"] - st, "agent_start": li["start_ms"],
                    "listening_to_check": (marks["check"] - marks["listening"]) * 1e3,
                    "qemu_to_check": marks["check"] * 1e3})
    return out


def main():
    miss = guestlib.missing(guestlib.KERNEL, guestlib.INITRD, os.path.join(guestlib.BUILD_DIR, "bin", "vsockd"))
    if miss:
        print(f"boot: skipped: {miss} is missing (make guest)", file=sys.stderr)
        return 0
    stock = guestlib.stock_kernel()
    if not stock:
        subprocess.run([os.path.join(HERE, "fetch-stock-kernel.sh")], check=False)
        stock = guestlib.stock_kernel()
    ours, ref = [], []
    load = [os.getloadavg()[0]]
    for i in range(RUNS):
        ours.append(boot_once(None, True))
        if stock:
            ref.append(boot_once(stock, False))
        load.append(os.getloadavg()[0])
        print(f"boot {i + 1}/{RUNS}: ours {ours[-1]['qemu_to_init']:.0f} ms to /init"
              + (f", stock {ref[-1]['qemu_to_init']:.0f} ms" if ref else ""), file=sys.stderr)
    accel = guestlib.katavm.choose_accel()
    note = (f"QEMU accel={accel}, 1 vCPU, 512 MiB, production initrd; host load average "
            f"{min(load):.1f}..{max(load):.1f} on {os.cpu_count()} CPUs")
    sk = os.path.basename(stock) if stock else "stock kernel missing"
    col = lambda rs, k: [r[k] for r in rs]  # noqa: E731
    for stage, what in (("qemu_to_kernel", "QEMU start -> kernel clock starts"),
                        ("first_console", "QEMU start -> first console byte"),
                        ("kernel_to_init", "kernel start -> /init's starting line (guest clock)"),
                        ("qemu_to_init", "QEMU start -> /init's starting line")):
        emit(record(f"boot_{stage}_ms", col(ours, stage), "ms", f"Debian {sk}, same initrd, same run",
                    col(ref, stage) if ref else [], note=f"{what}; {note}"))
    for stage, what, target in (
            ("init_to_listening", "/init's starting line -> listening (guest clock)", None),
            ("agent_start", "agent main() -> listening, as the agent logs it (start_ms), in the guest", 5.0),
            ("listening_to_check", "listening -> first Check answered over hybrid vsock (ttrpc)", None),
            ("qemu_to_check", "QEMU start -> first Check answered", None)):
        emit(record(f"boot_{stage}_ms", col(ours, stage), "ms", "none", [], target=target,
                    note=f"{what}; {note}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
