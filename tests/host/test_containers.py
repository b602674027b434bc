"""Containers on the host: the agent as root on a unix socket, a busybox rootfs built into
the test's temp dir, every effect observed from inside the container. Needs root (creates
namespaces and mounts); never touches the host's cgroups."""
import errno
import fcntl
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import HostAgent, RpcError, count_fds, zombies_of  # noqa: E402
from katatest.containers import (ContainerClient, build_rootfs, children_of, make_spec,  # noqa: E402
                                 mount_count)

F_GET_SEALS = 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8


class ContainerTestBase(unittest.TestCase):
    agent_args = ()

    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        cls.agent = HostAgent(extra_args=["--bundle-dir", "BUNDLES"] + list(cls.agent_args))
        cls.agent.extra_args[1] = os.path.join(cls.agent.tmp, "bundles")
        cls.agent.__enter__()
        cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
        cls.c = ContainerClient(cls.agent.sock)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.agent.__exit__(None, None, None)

    def tmp(self, *parts):
        return os.path.join(self.agent.tmp, *parts)

    def run_sh(self, cid, script, **kw):
        code, out, err = self.c.run(cid, make_spec(self.rootfs, ["/bin/sh", "-c", script], **kw))
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    def assertAgentAlive(self):
        self.assertIsNone(self.agent.proc.poll(), "the agent died: " + self.agent.log()[-3000:])
        self.assertEqual(self.agent.call("Check")["status"], "SERVING")


class Isolation(ContainerTestBase):
    def test_pid1_in_own_pid_namespace_though_the_spec_has_none(self):
        code, out, _ = self.run_sh("pidns", "echo $$; cat /proc/1/comm; readlink /proc/self/ns/pid")
        self.assertEqual(code, 0)
        lines = out.split()
        self.assertEqual(lines[0], "1")
        self.assertEqual(lines[1], "sh")
        self.assertNotEqual(lines[2], os.readlink("/proc/self/ns/pid"))

    def test_rootfs_is_the_containers_and_the_old_root_is_gone(self):
        marker = f"/kata-host-marker-{os.getpid()}"
        with open(self.tmp("marker"), "w") as f:
            f.write("host")
        # A file at the host's /, and the host's own mounts: none reachable inside.
        os.symlink(self.tmp("marker"), marker)
        try:
            code, out, _ = self.run_sh(
                "rootfs", f"test -e {marker} && echo MARKER; cat /etc/hostname; "
                          "cut -d' ' -f5 /proc/self/mountinfo; test -e /bin/busybox && echo BB")
        finally:
            os.unlink(marker)
        self.assertEqual(code, 0)
        self.assertNotIn("MARKER", out)
        self.assertIn("kata-test", out)
        self.assertIn("BB", out)
        mps = out.split("\n")[1:]
        for host_only in ("/sys/fs/cgroup/cpu", self.agent.tmp, "/proc/sys/fs/binfmt_misc"):
            self.assertNotIn(host_only, mps)
        self.assertIn("/", mps)

    def test_hostname(self):
        code, out, _ = self.run_sh("host", "hostname; cat /proc/sys/kernel/hostname", hostname="ctr-name")
        self.assertEqual((code, out.split()), (0, ["ctr-name", "ctr-name"]))
        self.assertNotEqual(os.uname().nodename, "ctr-name")

    def test_masked_paths_unreadable(self):
        os.makedirs(os.path.join(self.rootfs, "secretdir"), exist_ok=True)
        with open(os.path.join(self.rootfs, "secretdir", "key"), "w") as f:
            f.write("TOPSECRET")
        with open(os.path.join(self.rootfs, "etc", "secret"), "w") as f:
            f.write("TOPSECRET")
        code, out, _ = self.run_sh(
            "masked", "cat /etc/secret; ls /secretdir; cat /proc/kcore | head -c 10 | wc -c; "
                      "touch /secretdir/x 2>/dev/null || echo RO",
            masked=["/etc/secret", "/secretdir", "/proc/kcore", "/does/not/exist"])
        self.assertEqual(code, 0)
        self.assertNotIn("TOPSECRET", out)
        self.assertNotIn("key", out)
        self.assertIn("RO", out)
        self.assertEqual(out.split()[0], "0")  # /proc/kcore reads as /dev/null

    def test_readonly_path_not_writable(self):
        os.makedirs(os.path.join(self.rootfs, "data"), exist_ok=True)
        code, out, err = self.run_sh("ro", "touch /data/x && echo WROTE; touch /tmp/y && echo TMPOK",
                                     readonly=["/data", "/proc/sys"])
        self.assertEqual(code, 0)
        self.assertNotIn("WROTE", out)
        self.assertIn("Read-only file system", err)
        self.assertIn("TMPOK", out)
        self.assertFalse(os.path.exists(os.path.join(self.rootfs, "data", "x")))

    def test_readonly_rootfs(self):
        code, out, err = self.run_sh("rootro", "touch /etc/z && echo WROTE; echo x > /dev/shm/ok && echo SHM",
                                     root_readonly=True)
        self.assertNotIn("WROTE", out)
        self.assertIn("SHM", out)

    def test_bind_mounts(self):
        src = self.tmp("share")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "hello.txt"), "w") as f:
            f.write("from the host")
        with open(self.tmp("single-file"), "w") as f:
            f.write("one file")
        mounts = [
            {"destination": "/mnt/rw", "type": "bind", "source": src, "options": ["rbind", "rprivate"]},
            {"destination": "/mnt/ro", "type": "bind", "source": src, "options": ["bind", "ro", "nosuid"]},
            {"destination": "/etc/single", "type": "bind", "source": self.tmp("single-file"),
             "options": ["bind"]},
            {"destination": "/run/t", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700", "size=1m"]},
        ]
        code, out, err = self.run_sh(
            "bind", "cat /mnt/rw/hello.txt; echo; cat /etc/single; echo; echo new > /mnt/rw/new.txt; "
                    "echo bad > /mnt/ro/bad.txt || echo ROFAIL; stat -c %a /run/t; "
                    "grep -E ' /mnt/ro ' /proc/self/mountinfo", mounts=mounts)
        self.assertEqual(code, 0, err)
        self.assertIn("from the host", out)
        self.assertIn("one file", out)
        self.assertIn("ROFAIL", out)
        self.assertIn("700", out)
        self.assertRegex(out, r" /mnt/ro ro,nosuid")
        with open(os.path.join(src, "new.txt")) as f:
            self.assertEqual(f.read(), "new\n")
        self.assertFalse(os.path.exists(os.path.join(src, "bad.txt")))

    def test_symlink_in_rootfs_does_not_let_a_mount_escape(self):
        hostdir = self.tmp("hostdir")
        os.makedirs(hostdir, exist_ok=True)
        # Absolute and relative links pointing at a host directory; the destinations
        # must resolve inside the rootfs.
        os.symlink(hostdir, os.path.join(self.rootfs, "evil"))
        os.symlink("../../../../../../../../.." + hostdir, os.path.join(self.rootfs, "evil2"))
        try:
            mounts = [
                {"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs", "options": []},
                {"destination": "/evil2/y", "type": "bind", "source": self.tmp("share-esc"),
                 "options": ["bind"]},
            ]
            os.makedirs(self.tmp("share-esc"), exist_ok=True)
            code, out, err = self.run_sh("escape", f"echo inside > /evil/x/f && ls -d {hostdir}/x {hostdir}/y",
                                         mounts=mounts)
            self.assertEqual(code, 0, err)
            # Made inside the rootfs, where the link points when / is the rootfs...
            self.assertIn(f"{hostdir}/x", out)
            self.assertTrue(os.path.isdir(os.path.join(self.rootfs, hostdir.lstrip("/"), "x")))
            # ...and the host directory is untouched.
            self.assertEqual(os.listdir(hostdir), [])
        finally:
            os.unlink(os.path.join(self.rootfs, "evil"))
            os.unlink(os.path.join(self.rootfs, "evil2"))

    def test_dev(self):
        code, out, err = self.run_sh(
            "dev", "ls /dev; readlink /dev/fd; readlink /dev/ptmx; stat -c '%t:%T %a' /dev/null /dev/kmsg; "
                   "grep -E ' /dev(/pts|/shm)? ' /proc/self/mountinfo | cut -d' ' -f5,9",
            extra_linux={"Devices": [{"Path": "/dev/kmsg", "Type": "c", "Major": 1, "Minor": 11,
                                      "FileMode": 0o600}]})
        self.assertEqual(code, 0, err)
        for d in ("null", "zero", "full", "random", "urandom", "tty", "kmsg", "pts", "shm"):
            self.assertIn(d, out.split())
        self.assertIn("/proc/self/fd", out)
        self.assertIn("pts/ptmx", out)
        self.assertIn("1:3 666", out)
        self.assertIn("1:b 600", out)
        self.assertIn("/dev tmpfs", out)
        self.assertIn("/dev/pts devpts", out)
        self.assertIn("/dev/shm tmpfs", out)

    def test_no_agent_fd_leaks_into_the_container(self):
        code, out, _ = self.run_sh("fds", "ls /proc/$$/fd; true")  # the shell stays pid $$
        self.assertEqual(code, 0)
        self.assertEqual(sorted(out.split()), ["0", "1", "2"])
        # The container's first process (no shell in between): nothing blocked or ignored.
        code, out, _ = self.c.run("sigs", make_spec(self.rootfs, ["/bin/grep", "-E", "^Sig(Blk|Ign)",
                                                                  "/proc/self/status"]))
        self.assertEqual(out.decode().split(), ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16])

    def test_sysctl_in_the_containers_ipc_namespace(self):
        with open("/proc/sys/kernel/shmmni") as f:
            host = f.read().strip()
        code, out, err = self.run_sh("sysctl", "cat /proc/sys/kernel/shmmni",
                                     extra_linux={"Sysctl": {"kernel.shmmni": "1234"}})
        self.assertEqual((code, out.strip()), (0, "1234"), err)
        with open("/proc/sys/kernel/shmmni") as f:
            self.assertEqual(f.read().strip(), host)

    def test_user_namespace_with_id_maps(self):
        os.chmod(self.agent.tmp, 0o755)  # the rootfs must be reachable for uid 100000
        maps = {"UIDMappings": [{"ContainerID": 0, "HostID": 100000, "Size": 65536}],
                "GIDMappings": [{"ContainerID": 0, "HostID": 100000, "Size": 65536}]}
        code, out, err = self.run_sh("userns", "id -u; cat /proc/self/uid_map /proc/self/gid_map; echo $$",
                                     namespaces=("user", "mount", "uts", "ipc"), extra_linux=maps)
        self.assertEqual(code, 0, err)
        words = out.split()
        self.assertEqual(words[0], "0")
        self.assertEqual(words[1:4], ["0", "100000", "65536"])
        self.assertEqual(words[-1], "1")

    def test_filesystems_and_rootfs_propagation(self):
        mounts = [
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
        ]
        for prop in ("rprivate", "private", "rslave", "rshared"):
            code, out, err = self.run_sh(
                f"prop-{prop}", "grep -E ' / | /sys | /dev/mqueue ' /proc/self/mountinfo; ls /sys/class/net",
                mounts=mounts, namespaces=("mount", "uts", "ipc", "network"),
                extra_linux={"RootfsPropagation": prop})
            self.assertEqual(code, 0, f"{prop}: {err}")
            lines = {l.split()[4]: l for l in out.splitlines() if len(l.split()) > 4}
            self.assertIn(" - sysfs ", lines["/sys"])
            self.assertRegex(lines["/sys"], r" /sys ro,")
            self.assertIn(" - mqueue ", lines["/dev/mqueue"])
            self.assertEqual("shared:" in lines["/"], prop == "rshared", lines["/"])
            self.assertEqual(out.split()[-1], "lo")  # the container's own network namespace

    def test_cwd_is_created_and_used(self):
        code, out, _ = self.run_sh("cwd", "pwd", cwd="/work/dir")
        self.assertEqual((code, out.strip()), (0, "/work/dir"))


class Lifecycle(ContainerTestBase):
    def test_exit_code_and_several_waiters(self):
        spec = make_spec(self.rootfs, ["/bin/sh", "-c", "sleep 0.5; exit 3"])
        self.c.create("w1", spec)
        self.c.start("w1")
        codes = []
        ts = [threading.Thread(target=lambda: codes.append(self.c.wait("w1"))) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(codes, [3, 3, 3, 3])
        self.assertEqual(self.c.wait("w1"), 3)  # after the exit, again
        self.c.remove("w1")

    def test_sigterm_to_an_init_without_handler_becomes_sigkill(self):
        self.c.create("term", make_spec(self.rootfs, ["/bin/sleep", "1000"]))
        self.c.start("term")
        self.c.signal("term", signal.SIGTERM)
        self.assertEqual(self.c.wait("term", timeout=10), 128 + signal.SIGKILL)
        self.c.remove("term")

    def test_sigterm_to_an_init_with_a_handler_is_delivered(self):
        self.c.create("trap", make_spec(self.rootfs, ["/bin/sh", "-c",
                                                      "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done"]))
        self.c.start("trap")
        self.assertEqual(self.c.read("trap"), b"ready\n")
        self.c.signal("trap", signal.SIGTERM)
        self.assertEqual(self.c.wait("trap", timeout=10), 7)
        self.c.remove("trap")

    def test_sigkill_with_empty_exec_id_kills_every_process(self):
        self.c.create("all", make_spec(self.rootfs, ["/bin/sh", "-c", "sleep 1001 & sleep 1002 & wait"]))
        self.c.start("all")
        time.sleep(0.3)
        self.c.signal("all", signal.SIGKILL)
        self.assertEqual(self.c.wait("all", timeout=10), 137)
        time.sleep(0.2)
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                    self.assertNotIn(b"sleep\x001001", cmd)
                    self.assertNotIn(b"sleep\x001002", cmd)
                except OSError:
                    pass
        self.c.remove("all")

    def test_kill_before_start(self):
        self.c.create("nostart", make_spec(self.rootfs, ["/bin/true"]))
        self.c.signal("nostart", signal.SIGTERM)  # no handler: SIGKILL
        self.assertEqual(self.c.wait("nostart", timeout=10), 137)
        with self.assertRaises(RpcError) as e:
            self.c.start("nostart")
        self.assertEqual(e.exception.code, "FAILED_PRECONDITION")
        self.c.remove("nostart")

    def test_remove_running_container_with_timeout(self):
        self.c.create("rm", make_spec(self.rootfs, ["/bin/sleep", "1000"]))
        self.c.start("rm")
        t0 = time.time()
        self.c.remove("rm", timeout_s=5)
        self.assertLess(time.time() - t0, 5)
        with self.assertRaises(RpcError) as e:
            self.c.wait("rm")
        self.assertEqual(e.exception.code, "NOT_FOUND")

    def test_remove_created_but_never_started(self):
        self.c.create("idle", make_spec(self.rootfs, ["/bin/true"]))
        self.c.remove("idle")
        self.c.create("idle", make_spec(self.rootfs, ["/bin/true"]))  # the id is free again
        self.c.remove("idle")

    def test_stdin_roundtrip_and_close(self):
        self.c.create("cat", make_spec(self.rootfs, ["/bin/cat"]))
        self.c.start("cat")
        self.assertEqual(self.c.write_stdin("cat", b"hello stdin\n"), 12)
        self.c.close_stdin("cat")
        self.assertEqual(self.c.read_all("cat"), b"hello stdin\n")
        self.assertEqual(self.c.wait("cat"), 0)
        self.c.remove("cat")

    def test_init_is_named_by_the_container_id_or_the_create_exec_id(self):
        # The Kata runtime calls the init process by the container id (upstream's init
        # exec id); an empty exec id names it too.
        self.c.create("named", make_spec(self.rootfs, ["/bin/sh", "-c", "echo one"]))
        self.c.start("named")
        self.assertEqual(self.c.read_all("named", exec_id="named"), b"one\n")
        self.assertEqual(self.c.wait("named", exec_id="named"), 0)
        self.assertEqual(self.c.wait("named"), 0)
        self.c.remove("named")
        req = self.c.json_format.ParseDict({"container_id": "named2", "exec_id": "init-2",
                                            "OCI": make_spec(self.rootfs, ["/bin/true"])},
                                           self.c.pb.CreateContainerRequest())
        self.c.call("CreateContainer", req)
        self.c.start("named2")
        self.assertEqual(self.c.wait("named2", exec_id="init-2"), 0)
        self.c.remove("named2")

    def test_stderr_and_eof(self):
        code, out, err = self.run_sh("err", "echo out; echo err >&2; exit 4")
        self.assertEqual((code, out, err), (4, "out\n", "err\n"))

    def test_one_mib_written_right_before_exit_arrives_complete(self):
        blob = os.urandom(1 << 20)
        with open(os.path.join(self.rootfs, "blob"), "wb") as f:
            f.write(blob)
        code, out, _ = self.c.run("big", make_spec(self.rootfs, ["/bin/cat", "/blob"]))
        self.assertEqual(code, 0)
        self.assertEqual(len(out), len(blob))
        self.assertEqual(out, blob)

    def test_output_waits_in_the_pipe_after_exit(self):
        # Waited for before any read: the bytes stay in the pipe and are all delivered.
        self.c.create("late", make_spec(self.rootfs, ["/bin/sh", "-c", "head -c 60000 /dev/zero | tr '\\0' x"]))
        self.c.start("late")
        self.assertEqual(self.c.wait("late", timeout=10), 0)
        time.sleep(0.6)  # past the drain window: data still counts, only silence ends a stream
        self.assertEqual(self.c.read_all("late"), b"x" * 60000)
        self.c.remove("late")

    def test_read_blocks_until_data_and_honours_deadline(self):
        self.c.create("slow", make_spec(self.rootfs, ["/bin/sh", "-c", "sleep 1; echo later"]))
        self.c.start("slow")
        with self.assertRaises(RpcError) as e:
            self.c.read("slow", timeout=0.3)
        self.assertEqual(e.exception.code, "DEADLINE_EXCEEDED")
        self.assertEqual(self.c.read_all("slow"), b"later\n")
        self.c.remove("slow")


class Errors(ContainerTestBase):
    def expect(self, code, fn, *substrings):
        with self.assertRaises(RpcError) as e:
            fn()
        self.assertEqual(e.exception.code, code, e.exception.message)
        for s in substrings:
            self.assertIn(s, e.exception.message)
        self.assertAgentAlive()
        return e.exception.message

    def spec(self, args=("/bin/true",), **kw):
        return make_spec(self.rootfs, list(args), **kw)

    def test_unknown_id(self):
        pb = self.c.pb
        for method, req in [
            ("StartContainer", pb.StartContainerRequest(container_id="nope")),
            ("WaitProcess", pb.WaitProcessRequest(container_id="nope")),
            ("SignalProcess", pb.SignalProcessRequest(container_id="nope", signal=9)),
            ("RemoveContainer", pb.RemoveContainerRequest(container_id="nope")),
            ("ReadStdout", pb.ReadStreamRequest(container_id="nope", len=10)),
            ("ReadStderr", pb.ReadStreamRequest(container_id="nope", len=10)),
            ("WriteStdin", pb.WriteStreamRequest(container_id="nope", data=b"x")),
            ("CloseStdin", pb.CloseStdinRequest(container_id="nope")),
        ]:
            self.expect("NOT_FOUND", lambda: self.c.call(method, req), "nope")

    def test_unknown_exec_id(self):
        self.c.create("e1", self.spec())
        try:
            self.expect("NOT_FOUND", lambda: self.c.wait("e1", exec_id="x1"), "x1")
        finally:
            self.c.remove("e1")

    def test_duplicate_id(self):
        self.c.create("dup", self.spec())
        try:
            self.expect("ALREADY_EXISTS", lambda: self.c.create("dup", self.spec()), "dup")
        finally:
            self.c.remove("dup")

    def test_invalid_id(self):
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("../x", self.spec()), "container_id")

    def test_malformed_specs(self):
        s = self.spec()
        del s["Process"]
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "process")
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", self.spec(args=())), "process.args")
        s = self.spec()
        s["Linux"]["Namespaces"].append({"Type": "bogus"})
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "linux.namespaces[3].type", "bogus")
        s = self.spec(mounts=[{"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}])
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "mounts[1].destination", "not an absolute")
        s = self.spec(mounts=[{"destination": "/../../etc", "type": "tmpfs", "source": "tmpfs"}])
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "mounts[1].destination", "escapes")
        s = self.spec(masked=["/a/../../b"])
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "linux.maskedPaths[0]")
        s = self.spec(extra_linux={"Sysctl": {"vm.overcommit_memory": "1"}})
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "vm.overcommit_memory")
        s = self.spec()
        s["Root"]["Path"] = ""
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "root.path")
        s = self.spec(mounts=[{"destination": "/x", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]}])
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "mounts[1].options", "idmap")
        s = self.spec(env=["NOEQUALS"])
        self.expect("INVALID_ARGUMENT", lambda: self.c.create("bad", s), "process.env[0]")

    def test_failed_steps_name_the_step_and_errno(self):
        s = self.spec(mounts=[{"destination": "/m", "type": "bind", "source": self.tmp("no-such-dir"),
                               "options": ["bind"]}])
        self.expect("INTERNAL", lambda: self.c.create("step1", s), "mounts:", "ENOENT", "no-such-dir")
        s = self.spec(mounts=[{"destination": "/m", "type": "nosuchfs", "source": "x"}])
        self.expect("INTERNAL", lambda: self.c.create("step2", s), "mounts:", "nosuchfs", "ENODEV")
        self.expect("INTERNAL", lambda: self.c.create("step3", self.spec(args=["/bin/no-such-binary"])),
                    "exec:", "ENOENT", "no-such-binary")
        self.expect("INTERNAL", lambda: self.c.create("step4", self.spec(args=["nonexistent-cmd"])),
                    "exec:", "not found in $PATH")
        s = self.spec()
        s["Root"]["Path"] = self.tmp("no-rootfs")
        self.expect("INTERNAL", lambda: self.c.create("step5", s), "rootfs:", "ENOENT")
        s = self.spec()
        s["Linux"]["Namespaces"].append({"Type": "network", "Path": "/proc/1/ns/nonexistent"})
        self.expect("INTERNAL", lambda: self.c.create("step6", s), "namespaces:", "ENOENT")
        # None of them left anything behind; the ids are free.
        for i in range(1, 7):
            self.c.create(f"step{i}", self.spec())
            self.c.remove(f"step{i}")

    def test_start_twice(self):
        self.c.create("twice", self.spec(["/bin/sleep", "10"]))
        try:
            self.c.start("twice")
            self.expect("FAILED_PRECONDITION", lambda: self.c.start("twice"), "running")
        finally:
            self.c.remove("twice")


def exe_of(pid):
    """/proc/PID/exe, or "" for a process that is gone (a set-up process that just exited)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except (FileNotFoundError, ProcessLookupError):
        return ""


class SealedImage(ContainerTestBase):
    def waiting_init(self):
        """The one container init waiting for StartContainer: a child of the agent, running
        from the memfd, with no child. CreateContainer returns once the init is ready, while
        the set-up process that made it (also from the memfd, the init's parent) may still
        be exiting: look until it is gone and the init is the agent's."""
        deadline = time.time() + 5
        while True:
            inits = [p for p in children_of(self.agent.pid())
                     if exe_of(p).startswith("/memfd:") and not children_of(p)]
            if len(inits) == 1 or time.time() > deadline:
                self.assertEqual(len(inits), 1, "one container init waiting for StartContainer")
                return inits[0]
            time.sleep(0.01)

    def test_waiting_init_runs_from_the_sealed_memfd(self):
        self.c.create("sealed", make_spec(self.rootfs, ["/bin/true"]))
        try:
            pid = self.waiting_init()
            self.assertTrue(os.readlink(f"/proc/{pid}/exe").startswith("/memfd:kata-agent"))
            fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
            try:
                seals = fcntl.fcntl(fd, F_GET_SEALS)
            finally:
                os.close(fd)
            self.assertEqual(seals & 15, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
            # Reopening the exe for writing fails. While the init executes it the kernel
            # answers ETXTBSY before it looks at the seals (exec denies writers); the seals
            # are what holds otherwise (below).
            opath = os.open(f"/proc/{pid}/exe", os.O_PATH)
            try:
                for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
                    with self.assertRaises(OSError) as e:
                        os.close(os.open(f"/proc/self/fd/{opath}", flags))
                    self.assertIn(e.exception.errno, (errno.EPERM, errno.ETXTBSY))
            finally:
                os.close(opath)
            # Waiting: empty signal mask, no ignored signals, only stdio and the socket.
            with open(f"/proc/{pid}/status") as f:
                st = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
            self.assertEqual(int(st["SigBlk"], 16), 0)
            self.assertEqual(int(st["SigIgn"], 16), 0)
            self.assertEqual(sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd")), [0, 1, 2, 3])
        finally:
            self.c.remove("sealed")

    def test_init_is_not_dumpable_until_exec(self):
        # /proc/PID/* of a process that is not dumpable belongs to root whatever its uid; once
        # dumpable it belongs to the process's uid. A user namespace makes the two differ.
        os.chmod(self.agent.tmp, 0o755)
        maps = {"UIDMappings": [{"ContainerID": 0, "HostID": 200000, "Size": 65536}],
                "GIDMappings": [{"ContainerID": 0, "HostID": 200000, "Size": 65536}]}
        self.c.create("dump", make_spec(self.rootfs, ["/bin/sleep", "1000"],
                                        namespaces=("user", "mount", "uts", "ipc"), extra_linux=maps))
        try:
            pid = self.waiting_init()
            with open(f"/proc/{pid}/status") as f:
                uid_line = [l for l in f if l.startswith("Uid:")][0]
            self.assertEqual(uid_line.split()[1], "200000")
            self.assertEqual(os.stat(f"/proc/{pid}/status").st_uid, 0)  # not dumpable
            self.c.start("dump")
            deadline = time.time() + 5
            while os.readlink(f"/proc/{pid}/exe").startswith("/memfd:") and time.time() < deadline:
                time.sleep(0.01)
            self.assertTrue(os.readlink(f"/proc/{pid}/exe").endswith("/bin/busybox"))
            self.assertEqual(os.stat(f"/proc/{pid}/status").st_uid, 200000)  # dumpable after exec
        finally:
            self.c.remove("dump")

    def test_seals_refuse_writes_to_the_agents_image(self):
        # With no set-up process running from it, the image can be opened for writing;
        # every write, truncation and growth is refused by the seals (EPERM).
        agent_fds = f"/proc/{self.agent.pid()}/fd"
        memfds = [n for n in os.listdir(agent_fds) if os.readlink(f"{agent_fds}/{n}").startswith("/memfd:kata-agent")]
        self.assertEqual(len(memfds), 1)
        fd = os.open(f"{agent_fds}/{memfds[0]}", os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            for attempt in (lambda: os.pwrite(fd, b"\x7fELF", 0), lambda: os.ftruncate(fd, 0),
                            lambda: os.ftruncate(fd, size + 4096), lambda: os.pwrite(fd, b"x", size)):
                with self.assertRaises(OSError) as e:
                    attempt()
                self.assertEqual(e.exception.errno, errno.EPERM)
            self.assertEqual(fcntl.fcntl(fd, F_GET_SEALS) & 15, 15)
        finally:
            os.close(fd)


class Sandbox(ContainerTestBase):
    def test_create_and_destroy_sandbox_in_host_mode(self):
        pb = self.c.pb
        self.c.call("CreateSandbox", pb.CreateSandboxRequest(hostname="podhost", sandbox_id="sb1"))
        with self.assertRaises(RpcError) as e:
            self.c.call("CreateSandbox", pb.CreateSandboxRequest(hostname="podhost", sandbox_id="sb1"))
        self.assertEqual(e.exception.code, "ALREADY_EXISTS")
        code, out, _ = self.run_sh("pod1", "hostname")
        self.assertEqual((code, out.strip()), (0, "podhost"))
        code, out, _ = self.run_sh("pod2", "hostname", hostname="own")
        self.assertEqual(out.strip(), "own")
        # Two containers sharing the first one's pid namespace.
        self.c.create("first", make_spec(self.rootfs, ["/bin/sleep", "1000"]))
        self.c.start("first")
        self.c.create("second", make_spec(self.rootfs, ["/bin/sh", "-c", "cat /proc/1/cmdline; echo; echo $$"]),
                      sandbox_pidns=True)
        self.c.start("second")
        out = self.c.read_all("second").decode()
        self.assertIn("sleep\x001000", out)
        self.assertNotEqual(out.split()[-1], "1")
        self.c.call("DestroySandbox", pb.DestroySandboxRequest())
        for cid in ("first", "second"):
            with self.assertRaises(RpcError) as e:
                self.c.wait(cid)
            self.assertEqual(e.exception.code, "NOT_FOUND")
        self.assertAgentAlive()  # host mode: keeps serving
        self.c.call("CreateSandbox", pb.CreateSandboxRequest(hostname="again"))
        self.c.call("DestroySandbox", pb.DestroySandboxRequest())


class Concurrency(ContainerTestBase):
    def test_containers_created_and_run_in_parallel(self):
        results = {}

        def one(i):
            try:
                results[i] = self.c.run(f"par{i}", make_spec(self.rootfs, ["/bin/sh", "-c", f"echo {i}"]))
            except Exception as e:  # noqa: BLE001
                results[i] = e
        ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for i in range(16):
            self.assertEqual(results[i], (0, f"{i}\n".encode(), b""))
        self.assertEqual(zombies_of(self.agent.pid()), [])


class Cycles(ContainerTestBase):
    def test_200_cycles_leave_nothing_behind(self):
        spec = make_spec(self.rootfs, ["/bin/sh", "-c", "echo $$"],
                         mounts=[{"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs"}],
                         masked=["/proc/kcore"], readonly=["/proc/sys"])
        # Warm up (gRPC threads, lazily created fds), then measure.
        self.c.run("warm", spec)
        time.sleep(0.5)
        pid = self.agent.pid()
        fds0, mounts0 = count_fds(pid), mount_count()
        n = 200
        phases = {"create": 0.0, "start": 0.0, "read+wait": 0.0, "remove": 0.0}

        def timed(name, fn, *args):
            t = time.perf_counter()
            r = fn(*args)
            phases[name] += time.perf_counter() - t
            return r
        t0 = time.perf_counter()
        for i in range(n):
            cid = f"cyc{i}"
            timed("create", self.c.create, cid, spec)
            timed("start", self.c.start, cid)
            out = timed("read+wait", self.c.read_all, cid)
            self.assertEqual(self.c.wait(cid), 0)
            self.assertEqual(out, b"1\n")
            timed("remove", self.c.remove, cid)
        dt = time.perf_counter() - t0
        sys.stderr.write(f"\n{n} create+start+read+wait+remove cycles: {dt:.2f} s, {1000 * dt / n:.1f} ms each ("
                         + ", ".join(f"{k} {1000 * v / n:.1f} ms" for k, v in phases.items()) + ")\n")
        time.sleep(0.5)
        self.assertEqual(zombies_of(pid), [])
        self.assertEqual(children_of(pid), [])
        self.assertLessEqual(count_fds(pid), fds0, os.listdir(f"/proc/{pid}/fd"))
        self.assertEqual(mount_count(), mounts0)


class PipeSize(ContainerTestBase):
    # Bigger than the data: how a writer fills pipe pages (sendfile, partial pages) decides
    # how much of the nominal size it can use.
    agent_args = ("--container-pipe-size", str(1 << 20))

    def test_output_stays_in_a_big_pipe_until_read_after_exit(self):
        blob = os.urandom(768 << 10)
        with open(os.path.join(self.rootfs, "blob"), "wb") as f:
            f.write(blob)
        self.c.create("bigpipe", make_spec(self.rootfs, ["/bin/cat", "/blob"]))
        self.c.start("bigpipe")
        self.assertEqual(self.c.wait("bigpipe", timeout=10), 0)  # exited before any read
        self.assertEqual(self.c.read_all("bigpipe"), blob)
        self.c.remove("bigpipe")


if __name__ == "__main__":
    unittest.main()
