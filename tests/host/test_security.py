"""The process settings of containers on the host: capabilities (all five sets),
no_new_privs, seccomp, uid/gid/groups (numeric and by name), HOME, rlimits and
oom_score_adj, each observed from inside the container by sec-probe (tests/vm/guest/
sec-probe.c: /proc/self/status, getresuid, getgroups, getrlimit, a mkdir the profile
denies) or busybox (`id`, /proc/self/limits).

The tier runs under novsock, whose own seccomp filter every process inherits: "Seccomp: 2"
alone proves nothing here, so the filter count is compared with the agent's own
(Seccomp_filters) and each filter is shown by its effect. The host's bounding set lacks
CAP_SYS_RESOURCE, so limits are only lowered. Needs root; never touches the host's
cgroups."""
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import katatest  # noqa: E402
from katatest import BIN, HostAgent, RpcError  # noqa: E402
from katatest.containers import ContainerClient, build_rootfs, make_spec  # noqa: E402

PROBE = os.path.join(BIN, "sec-probe")

CAP = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6,
       "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
       "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
       "CAP_SETFCAP": 31}
# Docker's default set.
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
                "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
                "CAP_AUDIT_WRITE", "CAP_SETFCAP"]
DENIED_ERRNO = 121  # EREMOTEIO: nothing else returns it for mkdir


def mask(names):
    m = 0
    for n in names:
        m |= 1 << CAP[n]
    return f"{m:016x}"


def deny_mkdir_profile(**extra):
    p = {"DefaultAction": "SCMP_ACT_ALLOW", "Architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
         "Syscalls": [{"Names": ["mkdir", "mkdirat"], "Action": "SCMP_ACT_ERRNO", "errnoret": DENIED_ERRNO}]}
    p.update(extra)
    return p


def parse_probe(out):
    """sec-probe's "key value" lines -> dict (repeated keys: lists under "rlimit", "ns", "mount")."""
    d = {"rlimit": {}, "ns": {}, "mount": []}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "rlimit":
            name, soft, hard = value.split()
            d["rlimit"][name] = (soft, hard)
        elif key == "ns":
            name, _, link = value.partition(" ")
            d["ns"][name] = link
        elif key == "mount":
            d["mount"].append(value)
        elif key == "syscall":
            name, _, result = value.partition(" ")
            d[f"syscall {name}"] = result
        else:
            d[key] = value
    return d


class SecurityTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        katatest.require_root(cls)
        if not os.path.exists(PROBE):
            raise unittest.SkipTest(f"{PROBE} is missing (built with the VM tier's guest helpers)")
        cls.agent = HostAgent(extra_args=["--bundle-dir", "BUNDLES"])
        cls.agent.extra_args[1] = os.path.join(cls.agent.tmp, "bundles")
        cls.agent.__enter__()
        os.chmod(cls.agent.tmp, 0o755)  # reachable for uid 1000
        cls.rootfs = build_rootfs(os.path.join(cls.agent.tmp, "rootfs"))
        shutil.copy(PROBE, os.path.join(cls.rootfs, "bin", "sec-probe"))
        cls.c = ContainerClient(cls.agent.sock)
        with open(f"/proc/{cls.agent.pid()}/status") as f:
            st = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
        cls.agent_filters = int(st.get("Seccomp_filters", "0").strip())
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.agent.__exit__(None, None, None)

    def cid(self, name):
        type(self).n += 1
        return f"{name}{self.n}"

    def spec(self, args, user=None, caps=None, nnp=False, seccomp=None, rlimits=None, env=None, **kw):
        s = make_spec(self.rootfs, args, env=env, **kw)
        p = s["Process"]
        if user is not None:
            p["User"] = user
        if caps is not None:
            p["Capabilities"] = caps
        p["NoNewPrivileges"] = nnp
        if rlimits is not None:
            p["Rlimits"] = rlimits
        if seccomp is not None:
            s["Linux"]["Seccomp"] = seccomp
        return s

    def run_spec(self, name, spec, string_user=None):
        cid = self.cid(name)
        if string_user is None:
            code, out, err = self.c.run(cid, spec)
        else:
            req = self.c.json_format.ParseDict({"container_id": cid, "OCI": copy.deepcopy(spec),
                                                "string_user": string_user},
                                               self.c.pb.CreateContainerRequest())
            self.c.call("CreateContainer", req)
            try:
                self.c.start(cid)
                out = self.c.read_all(cid)
                err = self.c.read_all(cid, "stderr")
                code = self.c.wait(cid)
            finally:
                self.c.remove(cid)
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    def probe(self, name, spec, string_user=None):
        code, out, err = self.run_spec(name, spec, string_user)
        self.assertEqual(code, 0, err)
        return parse_probe(out)

    def expect_error(self, code, spec, *substrings, string_user=None):
        with self.assertRaises(RpcError) as e:
            self.run_spec("bad", spec, string_user)
        self.assertEqual(e.exception.code, code, e.exception.message)
        for s in substrings:
            self.assertIn(s, e.exception.message)
        self.assertIsNone(self.agent.proc.poll())


class Capabilities(SecurityTestBase):
    def test_root_with_the_default_set_no_new_privs_and_seccomp(self):
        caps = {"Bounding": DEFAULT_CAPS, "Effective": DEFAULT_CAPS, "Permitted": DEFAULT_CAPS,
                "Inheritable": ["CAP_KILL"], "Ambient": ["CAP_KILL"]}
        d = self.probe("root", self.spec(["/bin/sec-probe"], caps=caps, nnp=True,
                                         seccomp=deny_mkdir_profile()))
        self.assertEqual(d["CapBnd"], mask(DEFAULT_CAPS))
        self.assertEqual(d["CapEff"], mask(DEFAULT_CAPS))
        self.assertEqual(d["CapPrm"], mask(DEFAULT_CAPS))
        self.assertEqual(d["CapInh"], mask(["CAP_KILL"]))
        self.assertEqual(d["CapAmb"], mask(["CAP_KILL"]))
        self.assertEqual(d["NoNewPrivs"], "1")
        self.assertEqual(d["Seccomp"], "2")
        self.assertEqual(int(d["Seccomp_filters"]), self.agent_filters + 1)
        self.assertEqual(d["syscall mkdir"], f"errno {DENIED_ERRNO}")
        self.assertEqual(d["syscall getppid"], "ok")
        self.assertEqual((d["uid"], d["gid"]), ("0 0 0", "0 0 0"))

    def test_uid_1000_without_no_new_privs_keeps_requested_caps_and_filter(self):
        # The Kubernetes default: no_new_privs false, a non-root user. The filter has to go
        # in before the uid change (no CAP_SYS_ADMIN after it, no no_new_privs either).
        caps = {"Bounding": DEFAULT_CAPS, "Effective": ["CAP_NET_BIND_SERVICE"],
                "Permitted": ["CAP_NET_BIND_SERVICE"], "Inheritable": ["CAP_NET_BIND_SERVICE"],
                "Ambient": ["CAP_NET_BIND_SERVICE"]}
        d = self.probe("k8s", self.spec(["/bin/sec-probe"], user={"UID": 1000, "GID": 1000,
                                                                  "AdditionalGids": [5, 44]},
                                        caps=caps, nnp=False, seccomp=deny_mkdir_profile()))
        self.assertEqual((d["uid"], d["gid"], d["groups"]), ("1000 1000 1000", "1000 1000 1000", "5,44"))
        self.assertEqual(d["NoNewPrivs"], "0")
        self.assertEqual(d["Seccomp"], "2")
        self.assertEqual(int(d["Seccomp_filters"]), self.agent_filters + 1)
        self.assertEqual(d["syscall mkdir"], f"errno {DENIED_ERRNO}")
        # Ambient capabilities survive the exec of a non-root process into its effective set.
        self.assertEqual(d["CapAmb"], mask(["CAP_NET_BIND_SERVICE"]))
        self.assertEqual(d["CapEff"], mask(["CAP_NET_BIND_SERVICE"]))
        self.assertEqual(d["CapPrm"], mask(["CAP_NET_BIND_SERVICE"]))
        self.assertEqual(d["CapBnd"], mask(DEFAULT_CAPS))

    def test_uid_1000_without_capabilities_has_none(self):
        d = self.probe("nocaps", self.spec(["/bin/sec-probe"], user={"UID": 1000, "GID": 1000}))
        for k in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            self.assertEqual(d[k], "0" * 16, k)
        self.assertNotEqual(d["CapBnd"], "0" * 16)  # not asked to change: the agent's

    def test_empty_sets_drop_everything_even_for_root(self):
        caps = {"Bounding": [], "Effective": [], "Permitted": [], "Inheritable": [], "Ambient": []}
        code, out, err = self.run_spec("empty", self.spec(["/bin/sh", "-c", "grep ^Cap /proc/self/status; "
                                                                            "touch /root/x || echo DENIED"],
                                                          caps=caps))
        self.assertEqual(code, 0, err)
        self.assertIn("CapBnd:\t0000000000000000", out)
        self.assertIn("CapEff:\t0000000000000000", out)

    def test_ambient_not_inheritable_is_left_out(self):
        caps = {"Bounding": DEFAULT_CAPS, "Effective": ["CAP_KILL"], "Permitted": ["CAP_KILL"],
                "Inheritable": [], "Ambient": ["CAP_KILL"]}
        d = self.probe("amb", self.spec(["/bin/sec-probe"], user={"UID": 1000, "GID": 1000}, caps=caps))
        self.assertEqual(d["CapAmb"], "0" * 16)
        self.assertIn("ambient: CAP_KILL is not both permitted and inheritable", self.agent.log())

    def test_unknown_capability_is_invalid_argument(self):
        caps = {"Bounding": ["CAP_CHOWN", "CAP_TIME_TRAVEL"]}
        self.expect_error("INVALID_ARGUMENT", self.spec(["/bin/true"], caps=caps),
                          "process.capabilities.bounding[1]", "CAP_TIME_TRAVEL")


class Seccomp(SecurityTestBase):
    def test_filter_loaded_last_with_no_new_privs(self):
        # With no_new_privs the filter goes in right before the exec: a profile denying what
        # the set-up itself uses (the identity change, capset, prctl) still starts.
        prof = deny_mkdir_profile()
        prof["Syscalls"].append({"Names": ["setresuid", "setresgid", "setgroups", "capset", "prctl"],
                                 "Action": "SCMP_ACT_ERRNO", "errnoret": 1})
        d = self.probe("last", self.spec(["/bin/sec-probe"], user={"UID": 1000, "GID": 1000}, nnp=True,
                                         caps={"Bounding": ["CAP_KILL"], "Effective": ["CAP_KILL"],
                                               "Permitted": ["CAP_KILL"]},
                                         seccomp=prof))
        self.assertEqual(d["uid"], "1000 1000 1000")
        self.assertEqual(d["syscall mkdir"], f"errno {DENIED_ERRNO}")
        self.assertEqual(d["nnp_prctl"], "-1")  # prctl itself is denied now (EPERM)

    def test_without_no_new_privs_the_setup_after_the_load_is_filtered(self):
        # Without no_new_privs the filter is in before the identity change: a profile that
        # denies setresuid makes the set-up fail at that step, with the profile's errno.
        prof = deny_mkdir_profile()
        prof["Syscalls"].append({"Names": ["setresuid"], "Action": "SCMP_ACT_ERRNO", "errnoret": 95})
        self.expect_error("INTERNAL", self.spec(["/bin/true"], user={"UID": 1000, "GID": 1000},
                                                nnp=False, seccomp=prof),
                          "user:", "setresuid 1000", "EOPNOTSUPP")

    def test_unknown_syscall_names_are_skipped_with_a_warning(self):
        prof = deny_mkdir_profile()
        prof["Syscalls"][0]["Names"].append("no_such_syscall_2077")
        d = self.probe("unknownsc", self.spec(["/bin/sec-probe"], nnp=True, seccomp=prof))
        self.assertEqual(d["syscall mkdir"], f"errno {DENIED_ERRNO}")
        self.assertIn("no_such_syscall_2077", self.agent.log())

    def test_argument_conditions(self):
        # personality(0xffffffff) only queries; deny the query, allow setting PER_LINUX (0).
        prof = {"DefaultAction": "SCMP_ACT_ALLOW",
                "Syscalls": [{"Names": ["personality"], "Action": "SCMP_ACT_ERRNO", "errnoret": 42,
                              "Args": [{"Index": 0, "Value": 0xffffffff, "Op": "SCMP_CMP_EQ"}]},
                             {"Names": ["kill"], "Action": "SCMP_ACT_ERRNO", "errnoret": 43,
                              "Args": [{"Index": 1, "Value": 0x7f, "ValueTwo": 10, "Op": "SCMP_CMP_MASKED_EQ"}]}]}
        code, out, err = self.run_spec("args", self.spec(
            ["/bin/sh", "-c", "kill -10 $$ 2>&1; echo rc=$?; kill -0 $$ && echo ALIVE; "
                              "trap 'echo GOT12' 12; kill -12 $$"], nnp=True, seccomp=prof))
        self.assertEqual(code, 0, err)
        self.assertIn("rc=1", out)  # signal 10 denied by the masked-eq rule
        self.assertIn("ALIVE", out)
        self.assertIn("GOT12", out)

    def test_notify_and_bad_profiles_are_refused(self):
        prof = deny_mkdir_profile()
        prof["Syscalls"][0]["Action"] = "SCMP_ACT_NOTIFY"
        del prof["Syscalls"][0]["errnoret"]
        self.expect_error("UNIMPLEMENTED", self.spec(["/bin/true"], seccomp=prof), "SCMP_ACT_NOTIFY")
        prof = deny_mkdir_profile(DefaultAction="SCMP_ACT_SOMETIMES")
        self.expect_error("INVALID_ARGUMENT", self.spec(["/bin/true"], seccomp=prof), "linux.seccomp.defaultAction")
        prof = deny_mkdir_profile()
        prof["Syscalls"][0]["Args"] = [{"Index": 9, "Value": 1, "Op": "SCMP_CMP_EQ"}]
        self.expect_error("INVALID_ARGUMENT", self.spec(["/bin/true"], seccomp=prof),
                          "linux.seccomp.syscalls[0].args[0].index")


class Users(SecurityTestBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(cls.rootfs, "etc", "passwd"), "a") as f:
            f.write("svc:x:2000:2001:Service:/srv/svc:/bin/sh\n")
        with open(os.path.join(cls.rootfs, "etc", "group"), "a") as f:
            f.write("svcgrp:x:2001:\nwheel:x:10:svc,user\nvideo:x:44:svc\n")

    def test_id_shows_numeric_uid_gid_and_groups(self):
        code, out, err = self.run_spec("id", self.spec(["id"], user={"UID": 1000, "GID": 1000,
                                                                          "AdditionalGids": [10, 44]}))
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip(), "uid=1000(user) gid=1000(user) groups=10(wheel),44(video)")

    def test_string_user_by_name(self):
        d = self.probe("byname", self.spec(["/bin/sec-probe"]), string_user={"uid": "svc"})
        self.assertEqual(d["uid"], "2000 2000 2000")
        self.assertEqual(d["gid"], "2001 2001 2001")
        self.assertEqual(d["groups"], "10,44")  # the groups /etc/group lists svc in
        self.assertEqual(d["HOME"], "/srv/svc")

    def test_string_user_with_group_names(self):
        d = self.probe("bygroup", self.spec(["/bin/sec-probe"]),
                       string_user={"uid": "user", "gid": "video", "additionalGids": ["svcgrp", "7"]})
        self.assertEqual(d["uid"], "1000 1000 1000")
        self.assertEqual(d["gid"], "44 44 44")
        self.assertEqual(d["groups"], "7,10,2001")  # the kernel keeps them sorted
        self.assertEqual(d["HOME"], "/home/user")

    def test_unknown_user_name_is_invalid_argument(self):
        self.expect_error("INVALID_ARGUMENT", self.spec(["/bin/true"]), "\"ghost\": no such user",
                          string_user={"uid": "ghost"})
        self.expect_error("INVALID_ARGUMENT", self.spec(["/bin/true"]), "string_user.uid",
                          string_user={"uid": "a:b"})

    def test_home_from_passwd_unless_given(self):
        d = self.probe("home", self.spec(["/bin/sec-probe"], user={"UID": 1000, "GID": 1000}))
        self.assertEqual(d["HOME"], "/home/user")
        d = self.probe("home2", self.spec(["/bin/sec-probe"], user={"UID": 4242, "GID": 4242}))
        self.assertEqual(d["HOME"], "/")
        d = self.probe("home3", self.spec(["/bin/sec-probe"], env=["PATH=/bin", "HOME=/custom"]))
        self.assertEqual(d["HOME"], "/custom")

    def test_oversized_or_special_passwd_is_refused(self):
        root = tempfile.mkdtemp(dir=self.agent.tmp)
        os.chmod(root, 0o755)
        rootfs = build_rootfs(os.path.join(root, "rootfs"))
        os.unlink(os.path.join(rootfs, "etc", "passwd"))
        os.mkfifo(os.path.join(rootfs, "etc", "passwd"))  # a set-up that opens it would hang
        s = make_spec(rootfs, ["/bin/true"])
        self.expect_error("INTERNAL", s, "/etc/passwd is not a regular file", string_user={"uid": "user"})
        os.unlink(os.path.join(rootfs, "etc", "passwd"))
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("x" * (5 << 20))
        self.expect_error("INTERNAL", s, "/etc/passwd is larger than", string_user={"uid": "user"})


class NssNeverLoaded(SecurityTestBase):
    """The container's /etc/nsswitch.conf names a module of its own, whose constructor
    writes a marker; the agent resolving a StringUser there never loads it (no marker)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in ("gcc",):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} is needed to build the NSS module")
        root = cls.rootfs
        libdir = os.path.join(root, "lib", "x86_64-linux-gnu")
        os.makedirs(libdir, exist_ok=True)
        os.makedirs(os.path.join(root, "lib64"), exist_ok=True)
        src = os.path.join(cls.agent.tmp, "evil.c")
        with open(src, "w") as f:
            f.write('#include <fcntl.h>\n#include <stdio.h>\n#include <unistd.h>\n'
                    '__attribute__((constructor)) static void mark(void) {\n'
                    '  int fd = open("/nss-marker", O_CREAT | O_WRONLY | O_APPEND, 0644);\n'
                    '  if (fd >= 0) { dprintf(fd, "loaded in pid %d\\n", getpid()); close(fd); }\n}\n')
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", os.path.join(libdir, "libnss_evil.so.2"), src],
                       check=True)
        ctl = os.path.join(cls.agent.tmp, "getpw.c")
        with open(ctl, "w") as f:
            f.write('#include <pwd.h>\n#include <stdio.h>\n'
                    'int main(void) { struct passwd* p = getpwnam("user");\n'
                    '  printf("%s\\n", p ? "found" : "missing"); return 0; }\n')
        subprocess.run(["gcc", "-static", "-o", os.path.join(root, "bin", "getpw-static"), ctl],
                       check=True, capture_output=True)
        # The module needs a libc to run with: the host's, as a container image would ship one.
        for lib in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
            shutil.copy(os.path.realpath(lib), os.path.join(root, lib.lstrip("/")))
        with open(os.path.join(root, "etc", "nsswitch.conf"), "w") as f:
            f.write("passwd: evil files\ngroup: evil files\nshadow: files\n")
        cls.marker = os.path.join(root, "nss-marker")

    def setUp(self):
        if os.path.exists(self.marker):
            os.unlink(self.marker)

    def test_string_user_resolves_without_loading_it(self):
        d = self.probe("nss", self.spec(["/bin/sec-probe"]),
                       string_user={"uid": "user", "gid": "tty", "additionalGids": ["nogroup"]})
        self.assertEqual(d["uid"], "1000 1000 1000")
        self.assertEqual(d["gid"], "5 5 5")
        self.assertEqual(d["groups"], "65534")
        self.assertFalse(os.path.exists(self.marker), "the agent's set-up loaded the container's NSS module")


class Limits(SecurityTestBase):
    def test_rlimits_in_proc_self_limits(self):
        rl = [{"Type": "RLIMIT_NOFILE", "Soft": 100, "Hard": 200},
              {"Type": "RLIMIT_CORE", "Soft": 0, "Hard": 0},
              {"Type": "RLIMIT_NPROC", "Soft": 300, "Hard": 400}]
        code, out, err = self.run_spec("lim", self.spec(["/bin/cat", "/proc/self/limits"], rlimits=rl))
        self.assertEqual(code, 0, err)
        lines = {l[:26].strip(): l[26:].split() for l in out.splitlines()[1:]}
        self.assertEqual(lines["Max open files"][:2], ["100", "200"])
        self.assertEqual(lines["Max core file size"][:2], ["0", "0"])
        self.assertEqual(lines["Max processes"][:2], ["300", "400"])

    def test_rlimits_and_oom_score_adj_through_the_probe(self):
        rl = [{"Type": "RLIMIT_NOFILE", "Soft": 512, "Hard": 1024}]
        spec = self.spec(["/bin/sec-probe"], rlimits=rl, user={"UID": 1000, "GID": 1000})
        spec["Process"]["OOMScoreAdj"] = 500
        d = self.probe("oom", spec)
        self.assertEqual(d["rlimit"]["RLIMIT_NOFILE"], ("512", "1024"))
        self.assertEqual(d["oom_score_adj"], "500")

    def test_unknown_rlimit_is_invalid_argument(self):
        self.expect_error("INVALID_ARGUMENT",
                          self.spec(["/bin/true"], rlimits=[{"Type": "RLIMIT_FLOPS", "Soft": 1, "Hard": 1}]),
                          "process.rlimits[0].type", "RLIMIT_FLOPS")

    def test_apparmor_and_selinux_are_accepted_and_logged(self):
        spec = self.spec(["/bin/true"])
        spec["Process"]["ApparmorProfile"] = "docker-default"
        spec["Process"]["SelinuxLabel"] = "system_u:system_r:container_t:s0"
        code, _, err = self.run_spec("lsm", spec)
        self.assertEqual(code, 0, err)
        log = self.agent.log()
        self.assertIn("AppArmor is not supported", log)
        self.assertIn("SELinux is not supported", log)


if __name__ == "__main__":
    unittest.main()
