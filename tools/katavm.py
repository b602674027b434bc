#!/usr/bin/python3
"""Boots the guest (our kernel + initrd, the agent as PID 1) under QEMU: the one launcher
used by the tests, the benchmarks, `make demo` and people.

  tools/katavm.py boot                       # boots build/guest/{vmlinuz,initrd.img}, stays in
                                             # the foreground, prints how to reach the agent
  tools/katavm.py boot --initrd build/guest/initrd-test.img --cmdline agent.log=debug

As a library:
  with katavm.VM(initrd=..., cmdline=["agent.log=debug"]) as vm:
      vm.wait_console("listening")
      agent_ctl(vm.agent_addr(), "Check")

What it starts, each in its own process group and ended by pid on stop():
  vsockd    our vhost-user vsock backend (build/bin/vsockd): the guest's vsock appears as
            the hybrid-vsock unix socket <workdir>/vsock.sock ("CONNECT 1024\\n" -> "OK ...")
  virtiofsd QEMU's (/usr/lib/qemu/virtiofsd), only when a virtio-fs share is asked for
  QEMU      q35; TCG unless the CPU flags show vmx/svm and /dev/kvm opens; guest memory from
            a shared memfd (vhost-user needs it); pcie-root-ports for hot-plug; virtio-rng;
            pvpanic (a guest panic makes QEMU exit non-zero); serial console to
            <workdir>/console.log and <workdir>/console.sock; QMP at <workdir>/qmp.sock.

Hot-plug through QMP: disks (hotplug_disk onto a pcie-root-port), vCPUs (hotplug_cpu, up
to max_cpus; under TCG max_cpus must be above 8, see hotplug_cpu) and DIMMs (hotplug_memory: a shared memfd backend, up to 4 slots / 8 GiB).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD_DIR = os.environ.get("KATA_BUILD_DIR") or os.path.join(SRC_DIR, "build")
GUEST_DIR = os.path.join(BUILD_DIR, "guest")
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
QEMU = "qemu-system-x86_64"
AGENT_PORT = 1024


def choose_accel():
    """kvm only when the CPU really has hardware virtualisation: on these hosts /dev/kvm can
    be backed by PVM (no vmx/svm flag), where a normal guest kernel hangs silently."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set()
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
        if ("vmx" in flags or "svm" in flags) and os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "kvm"
    except OSError:
        pass
    return "tcg"


class QMP:
    def __init__(self, path, timeout=10):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.sock.makefile("rwb", buffering=0)
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise EOFError("QMP closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error']}")
            return r.get("return")

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no QMP event {name} within {timeout} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except socket.timeout:
                pass
            finally:
                self.sock.settimeout(None)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class VM:
    def __init__(self, kernel=None, initrd=None, cmdline=(), workdir=None, memory_mb=512, cpus=1,
                 max_cpus=4, disks=(), share_9p=None, virtiofs=None, vsock=True, guest_cid=3,
                 accel=None, root_ports=2, quiet=True, extra_qemu=(), keep_workdir=False,
                 vsockd=None, machine="q35"):
        self.kernel = kernel or os.path.join(GUEST_DIR, "vmlinuz")
        # initrd=False boots without one (root from a disk given on the command line).
        self.initrd = None if initrd is False else (initrd or os.path.join(GUEST_DIR, "initrd.img"))
        self.cmdline = list(cmdline)
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="katavm-")
        os.makedirs(self.workdir, exist_ok=True)
        self.keep_workdir = keep_workdir
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.max_cpus = max(max_cpus, cpus)
        # paths or dicts {path, id, format, readonly, serial, driver}; driver: virtio-blk
        # (default: virtio-blk-pci, or virtio-blk-device on microvm) or scsi-hd (on one
        # virtio-scsi controller, with "scsi_id" and "lun")
        self.disks = list(disks)
        self.share_9p = share_9p          # (host_dir, tag)
        self.virtiofs = virtiofs          # (host_dir, tag)
        self.vsock = vsock
        self.guest_cid = guest_cid
        self.accel = accel or os.environ.get("KATA_VM_ACCEL") or choose_accel()
        self.root_ports = root_ports
        self.quiet = quiet
        self.extra_qemu = list(extra_qemu)
        self.vsockd_bin = vsockd or os.path.join(BUILD_DIR, "bin", "vsockd")
        self.machine = machine
        self.procs = {}
        self.qmp = None
        self.t_start = None

    # ---- paths ----
    @property
    def console_log(self):
        return os.path.join(self.workdir, "console.log")

    @property
    def console_sock(self):
        return os.path.join(self.workdir, "console.sock")

    @property
    def qmp_sock(self):
        return os.path.join(self.workdir, "qmp.sock")

    @property
    def vsock_uds(self):
        return os.path.join(self.workdir, "vsock.sock")

    @property
    def vhost_sock(self):
        return os.path.join(self.workdir, "vhost-vsock.sock")

    def agent_addr(self, port=AGENT_PORT):
        return f"hvsock://{self.vsock_uds}:{port}"

    # ---- start/stop ----
    def kernel_cmdline(self):
        base = ["console=ttyS0", "reboot=k", "panic=-1", "printk.time=1"]
        if self.microvm and self.accel == "tcg":
            # microvm has no HPET or ACPI PM timer: under TCG the kernel finds nothing to
            # calibrate the TSC against and stops early. Tell it a frequency instead.
            base.append("tsc_early_khz=2000000")
        if self.quiet:
            base.append("quiet")
        return " ".join(base + self.cmdline)

    @property
    def microvm(self):
        """-M microvm: no PCI; virtio devices on virtio-mmio (…-device), no hot-plug."""
        return self.machine.startswith("microvm")

    def _virtio(self, name):
        return f"{name}-device" if self.microvm else f"{name}-pci"

    def qemu_argv(self):
        mem = f"{self.memory_mb}M"
        argv = [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-machine", f"{self.machine},accel={self.accel},memory-backend=mem",
                "-cpu", "host" if self.accel == "kvm" else "max",
                "-smp", f"{self.cpus},maxcpus={self.max_cpus}",
                "-m", mem if self.microvm else f"{mem},slots=4,maxmem=8G",
                "-object", f"memory-backend-memfd,id=mem,size={mem},share=on",
                "-kernel", self.kernel, "-append", self.kernel_cmdline(),
                "-chardev", f"socket,id=con,path={self.console_sock},server=on,wait=off,logfile={self.console_log},logappend=on",
                "-serial", "chardev:con",
                "-qmp", f"unix:{self.qmp_sock},server=on,wait=off",
                "-device", self._virtio("virtio-rng")]
        if not self.microvm:  # pvpanic is a PCI device here; microvm has no PCI
            argv += ["-device", "pvpanic-pci", "-action", "panic=exit-failure"]
        if self.initrd:
            argv += ["-initrd", self.initrd]
        for i in range(0 if self.microvm else self.root_ports):
            argv += ["-device", f"pcie-root-port,id=rp{i},bus=pcie.0,chassis={i + 1},slot={i + 1}"]
        if self.vsock:
            argv += ["-chardev", f"socket,id=vsk,path={self.vhost_sock}",
                     "-device", f"{self._virtio('vhost-user-vsock')},chardev=vsk"]
        scsi = False
        for i, d in enumerate(self.disks):
            d = {"path": d} if isinstance(d, str) else dict(d)
            did = d.get("id", f"disk{i}")
            fmt = d.get("format", "raw")
            ro = ",read-only=on" if d.get("readonly") else ""
            argv += ["-blockdev", f"driver=file,filename={d['path']},node-name={did}-file{ro}",
                     "-blockdev", f"driver={fmt},file={did}-file,node-name={did}{ro}"]
            serial = f",serial={d['serial']}" if d.get("serial") else ""
            if d.get("driver") == "scsi-hd":
                if not scsi:
                    argv += ["-device", f"{self._virtio('virtio-scsi')},id=scsi0"]
                    scsi = True
                argv += ["-device", f"scsi-hd,bus=scsi0.0,channel=0,scsi-id={d.get('scsi_id', 0)},"
                                    f"lun={d.get('lun', 0)},drive={did},id={did}{serial}"]
            else:
                argv += ["-device", f"{self._virtio('virtio-blk')},drive={did},id={did}{serial}"]
        if self.share_9p:
            host_dir, tag = self.share_9p
            argv += ["-fsdev", f"local,id=fs9p,path={host_dir},security_model=none",
                     "-device", f"{self._virtio('virtio-9p')},fsdev=fs9p,mount_tag={tag}"]
        if self.virtiofs:
            host_dir, tag = self.virtiofs
            argv += ["-chardev", f"socket,id=vfs,path={os.path.join(self.workdir, 'virtiofs.sock')}",
                     "-device", f"{self._virtio('vhost-user-fs')},chardev=vfs,tag={tag}"]
        return argv + self.extra_qemu

    def _spawn(self, name, argv):
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def _wait_path(self, path, proc, what, timeout=10):
        deadline = time.time() + timeout
        while not os.path.exists(path):
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited {proc.returncode}: {self.read_log(what)}")
            if time.time() > deadline:
                raise RuntimeError(f"{what} did not create {path} in {timeout} s")
            time.sleep(0.02)

    def start_backends(self):
        if self.vsock and "vsockd" not in self.procs:
            if not os.path.exists(self.vsockd_bin):
                raise RuntimeError(f"vsock backend {self.vsockd_bin} is not built (make build)")
            p = self._spawn("vsockd", [self.vsockd_bin, "--vhost-user", self.vhost_sock,
                                       "--uds", self.vsock_uds, "--guest-cid", str(self.guest_cid)])
            self._wait_path(self.vhost_sock, p, "vsockd")
        if self.virtiofs and "virtiofsd" not in self.procs:
            host_dir, _ = self.virtiofs
            sock = os.path.join(self.workdir, "virtiofs.sock")
            p = self._spawn("virtiofsd", [VIRTIOFSD, f"--socket-path={sock}", "-o", f"source={host_dir}",
                                          "-o", "cache=auto", "-o", "sandbox=chroot"])
            self._wait_path(sock, p, "virtiofsd")

    def start(self):
        for path in (self.kernel, self.initrd):
            if path and not os.path.exists(path):
                raise RuntimeError(f"{path} is missing (make guest builds it)")
        self.start_backends()
        self.t_start = time.time()
        self._spawn("qemu", self.qemu_argv())
        self._wait_path(self.qmp_sock, self.procs["qemu"], "qemu")
        self.qmp = QMP(self.qmp_sock)
        return self

    def restart_qemu(self):
        """Ends QEMU (by pid) and starts a new one with the same backends."""
        self.kill_qemu()
        for p in (self.qmp_sock, self.console_sock):
            try:
                os.unlink(p)
            except OSError:
                pass
        with open(self.console_log, "ab") as f:
            f.write(b"\n==== QEMU restarted ====\n")
        self.t_start = time.time()
        self._spawn("qemu", self.qemu_argv())
        self._wait_path(self.qmp_sock, self.procs["qemu"], "qemu")
        self.qmp = QMP(self.qmp_sock)

    # ---- hot-plug (QMP) ----
    def hotplug_disk(self, path, did, bus="rp0", fmt="raw", serial=None, driver="virtio-blk-pci"):
        """Adds a disk image as a block node and plugs a device for it into `bus` (a
        pcie-root-port). Returns the device's PCI slot on the root bus (the port's)."""
        self.qmp.cmd("blockdev-add", driver="file", filename=path, **{"node-name": f"{did}-file"})
        self.qmp.cmd("blockdev-add", driver=fmt, file=f"{did}-file", **{"node-name": did})
        args = {"driver": driver, "drive": did, "id": did, "bus": bus}
        if serial:
            args["serial"] = serial
        self.qmp.cmd("device_add", **args)
        return self.pci_slot_of(bus)

    def unplug_disk(self, did, timeout=60):
        """device_del, then waits for DEVICE_DELETED (the guest let go of it) and drops the
        block nodes. Returns the event."""
        self.qmp.cmd("device_del", id=did)
        deadline = time.time() + timeout
        while True:  # the device's own event, not its virtio backend's (no "device" in it)
            ev = self.qmp.wait_event("DEVICE_DELETED", max(0.1, deadline - time.time()))
            if ev.get("data", {}).get("device") == did:
                break
        for node in (did, f"{did}-file"):
            self.qmp.cmd("blockdev-del", **{"node-name": node})
        return ev

    def hotplug_cpu(self):
        """Adds one vCPU in the first free slot QEMU offers (query-hotpluggable-cpus; the
        guest sees an ACPI notification and a new, offline cpuN). Returns its QOM id.

        Under TCG (QEMU 7.2) IPIs in the xAPIC's logical flat mode never reach a hot-added
        vCPU, and the guest kernel uses that mode when at most 8 CPUs are possible: onlining
        the CPU would hang. Such a VM is refused here; start it with max_cpus above 8 and
        the kernel routes IPIs by physical APIC id, which works."""
        if self.accel == "tcg" and self.max_cpus <= 8:
            raise RuntimeError(f"vCPU hot-add under TCG needs max_cpus > 8 (physical APIC routing "
                               f"in the guest); this VM has max_cpus={self.max_cpus}")
        for c in self.qmp.cmd("query-hotpluggable-cpus"):
            if "qom-path" not in c:
                props = c["props"]
                cid = "cpu-" + "-".join(str(props[k]) for k in sorted(props))
                self.qmp.cmd("device_add", driver=c["type"], id=cid, **props)
                return cid
        raise RuntimeError(f"no free vCPU slot (maxcpus={self.max_cpus})")

    def hotplug_memory(self, size_mb, mid):
        """Adds a DIMM of size_mb backed by a shared memfd (vhost-user backends map guest
        memory, so it must be shareable; QEMU then sends them a new memory table). The guest
        sees ACPI memory hot-add: new memory blocks, offline until onlined. Returns the
        DIMM's id."""
        self.qmp.cmd("object-add", **{"qom-type": "memory-backend-memfd", "id": f"mem-{mid}",
                                       "size": size_mb << 20, "share": True})
        self.qmp.cmd("device_add", driver="pc-dimm", id=f"dimm-{mid}", memdev=f"mem-{mid}")
        return f"dimm-{mid}"

    def pci_slot_of(self, qdev_id):
        """The slot of a device on the root bus (pcie.0), from query-pci."""
        for bus in self.qmp.cmd("query-pci"):
            for d in bus["devices"]:
                if d.get("qdev_id") == qdev_id:
                    return d["slot"]
        raise KeyError(f"{qdev_id} is not on the root bus")

    def kill_qemu(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        p = self.procs.pop("qemu", None)
        if p and p.poll() is None:
            p.kill()
            p.wait(10)

    def wait_exit(self, timeout=30):
        """Waits for QEMU to exit (guest power-off or panic); returns its exit code."""
        p = self.procs["qemu"]
        return p.wait(timeout)

    def stop(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        for name in ("qemu", "virtiofsd", "vsockd"):
            p = self.procs.pop(name, None)
            if p is None:
                continue
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM) if name != "qemu" else p.kill()
                except ProcessLookupError:
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if self.own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except Exception:
            self.stop()
            raise

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write(f"---- guest console ({self.console_log}) ----\n{self.console_text()[-15000:]}\n")
            for name in ("vsockd", "virtiofsd", "qemu"):
                t = self.read_log(name)
                if t.strip():
                    sys.stderr.write(f"---- {name}.log ----\n{t[-4000:]}\n")
        self.stop()

    # ---- console ----
    def read_log(self, name):
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def console_text(self):
        try:
            with open(self.console_log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_console(self, pattern, timeout=60, start=0):
        """Waits for a regex on the console log; returns the match. Fails early when QEMU exits."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            text = self.console_text()
            m = rx.search(text, start)
            if m:
                return m
            q = self.procs.get("qemu")
            if q is not None and q.poll() is not None:
                raise RuntimeError(f"QEMU exited {q.returncode} before the console showed {pattern!r}")
            if time.time() > deadline:
                raise TimeoutError(f"console did not show {pattern!r} within {timeout} s")
            time.sleep(0.05)

    def wait_agent(self, timeout=60):
        """Waits for the agent's 'listening' log line; returns it as a dict."""
        m = self.wait_console(r'\{[^\n]*"msg":"listening"[^\n]*\}', timeout)
        return json.loads(m.group(0))


def main():
    ap = argparse.ArgumentParser(description="Boot the kata-agent guest under QEMU.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("boot", help="boot and stay in the foreground until the guest powers off or ^C")
    b.add_argument("--kernel", default=os.path.join(GUEST_DIR, "vmlinuz"))
    b.add_argument("--initrd", default=os.path.join(GUEST_DIR, "initrd.img"))
    b.add_argument("--cmdline", action="append", default=[], help="extra kernel command line words")
    b.add_argument("--workdir", help="where sockets and logs go (default: a new temp dir)")
    b.add_argument("--memory", type=int, default=512, help="MiB")
    b.add_argument("--cpus", type=int, default=1)
    b.add_argument("--disk", action="append", default=[], help="raw disk image (virtio-blk)")
    b.add_argument("--share-9p", metavar="DIR:TAG")
    b.add_argument("--virtiofs", metavar="DIR:TAG")
    b.add_argument("--no-vsock", action="store_true")
    b.add_argument("--accel", choices=["kvm", "tcg"])
    b.add_argument("--verbose-kernel", action="store_true", help="no 'quiet' on the command line")
    args = ap.parse_args()

    vm = VM(kernel=args.kernel, initrd=args.initrd, cmdline=args.cmdline, workdir=args.workdir,
            memory_mb=args.memory, cpus=args.cpus, disks=args.disk,
            share_9p=tuple(args.share_9p.rsplit(":", 1)) if args.share_9p else None,
            virtiofs=tuple(args.virtiofs.rsplit(":", 1)) if args.virtiofs else None,
            vsock=not args.no_vsock, accel=args.accel, quiet=not args.verbose_kernel,
            keep_workdir=True)
    print(f"katavm: accel={vm.accel} workdir={vm.workdir}", flush=True)
    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        vm.start()
        print(f"katavm: console log  {vm.console_log}  (interactive: socat -,raw,echo=0 unix-connect:{vm.console_sock})")
        if vm.vsock:
            print(f"katavm: agent        {BUILD_DIR}/bin/agent-ctl --addr {vm.agent_addr()} Check")
        print(f"katavm: QMP          {vm.qmp_sock}", flush=True)
        while not stop:
            rc = vm.procs["qemu"].poll()
            if rc is not None:
                print(f"katavm: QEMU exited {rc}")
                return rc
            time.sleep(0.2)
        return 0
    finally:
        vm.stop()


if __name__ == "__main__":
    sys.exit(main())
