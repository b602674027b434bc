// The container runtime's pure parts: spec conversion and validation, the agent's spec
// rewrite, mount options, the mount plan, mountinfo lookup, sysctl paths, signal masks.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>

#include <catch2/catch.hpp>

#include "runtime/devices.h"
#include "runtime/exec.h"
#include "runtime/mounts.h"
#include "runtime/namespaces.h"
#include "runtime/rootfs.h"
#include "runtime/signals.h"
#include "runtime/spec.h"
#include "runtime/sysctl.h"

using namespace kata;

namespace {

grpc::Spec MinimalSpec() {
  grpc::Spec s;
  s.mutable_process()->add_args("/bin/true");
  s.mutable_process()->set_cwd("/");
  s.mutable_root()->set_path("/rootfs");
  return s;
}

// The status message of a spec that must be refused as INVALID_ARGUMENT.
std::string Refused(const grpc::Spec& s) {
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

bool Contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

}  // namespace

TEST_CASE("a minimal spec converts") {
  grpc::Spec s = MinimalSpec();
  s.mutable_process()->add_env("PATH=/bin");
  s.mutable_process()->mutable_user()->set_uid(1000);
  s.mutable_process()->mutable_user()->add_additionalgids(5);
  s.set_hostname("h");
  s.mutable_linux()->add_namespaces()->set_type("uts");
  auto* ns = s.mutable_linux()->add_namespaces();
  ns->set_type("network");
  ns->set_path("/proc/1/ns/net");
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(r.ok());
  CHECK(r->process.args == std::vector<std::string>{"/bin/true"});
  CHECK(r->process.uid == 1000);
  CHECK(r->process.additional_gids == std::vector<gid_t>{5});
  CHECK(r->hostname == "h");
  CHECK(r->NewNamespace(NsType::kUts));
  CHECK(r->HasNamespace(NsType::kNet));
  CHECK(!r->NewNamespace(NsType::kNet));
  CHECK(r->FindNamespace(NsType::kNet)->path == "/proc/1/ns/net");
  CHECK(!r->HasNamespace(NsType::kPid));
}

TEST_CASE("malformed specs are refused naming the field") {
  grpc::Spec s = MinimalSpec();
  s.clear_process();
  CHECK(Contains(Refused(s), "process: missing"));

  s = MinimalSpec();
  s.mutable_process()->clear_args();
  CHECK(Contains(Refused(s), "process.args"));

  s = MinimalSpec();
  s.mutable_process()->set_args(0, "");
  CHECK(Contains(Refused(s), "process.args[0]"));

  s = MinimalSpec();
  s.mutable_process()->add_env("NOVALUE");
  CHECK(Contains(Refused(s), "process.env[0]"));

  s = MinimalSpec();
  s.mutable_process()->set_cwd("relative");
  CHECK(Contains(Refused(s), "process.cwd"));

  s = MinimalSpec();
  s.mutable_root()->set_path("");
  CHECK(Contains(Refused(s), "root.path"));

  s = MinimalSpec();
  s.mutable_linux()->add_namespaces()->set_type("mount");
  s.mutable_linux()->add_namespaces()->set_type("bogus");
  std::string m = Refused(s);
  CHECK(Contains(m, "linux.namespaces[1].type"));
  CHECK(Contains(m, "bogus"));

  s = MinimalSpec();
  s.mutable_linux()->add_namespaces()->set_type("ipc");
  s.mutable_linux()->add_namespaces()->set_type("ipc");
  CHECK(Contains(Refused(s), "listed twice"));

  s = MinimalSpec();
  auto* mnt = s.add_mounts();
  mnt->set_destination("proc");
  mnt->set_type("proc");
  CHECK(Contains(Refused(s), "mounts[0].destination"));

  s = MinimalSpec();
  mnt = s.add_mounts();
  mnt->set_destination("/a/../../etc");
  mnt->set_type("tmpfs");
  m = Refused(s);
  CHECK(Contains(m, "mounts[0].destination"));
  CHECK(Contains(m, "escapes"));

  s = MinimalSpec();
  mnt = s.add_mounts();
  mnt->set_destination("/");
  mnt->set_type("tmpfs");
  CHECK(Contains(Refused(s), "mounts[0].destination"));

  s = MinimalSpec();
  mnt = s.add_mounts();
  mnt->set_destination("/x");
  mnt->set_type("bind");
  mnt->set_source("relative");
  CHECK(Contains(Refused(s), "mounts[0].source"));

  s = MinimalSpec();
  mnt = s.add_mounts();
  mnt->set_destination("/x");
  mnt->set_type("tmpfs");
  mnt->add_options("tmpcopyup");
  CHECK(Contains(Refused(s), "mounts[0].options"));

  s = MinimalSpec();
  s.set_hostname("h");
  CHECK(Contains(Refused(s), "uts namespace"));

  s = MinimalSpec();
  s.mutable_linux()->add_namespaces()->set_type("user");
  CHECK(Contains(Refused(s), "linux.uidMappings"));

  s = MinimalSpec();
  auto* d = s.mutable_linux()->add_devices();
  d->set_path("/dev/x");
  d->set_type("z");
  CHECK(Contains(Refused(s), "linux.devices[0].type"));

  s = MinimalSpec();
  s.mutable_linux()->add_maskedpaths("/../x");
  CHECK(Contains(Refused(s), "linux.maskedPaths[0]"));

  s = MinimalSpec();
  s.mutable_linux()->add_readonlypaths("proc/sys");
  CHECK(Contains(Refused(s), "linux.readonlyPaths[0]"));

  s = MinimalSpec();
  s.mutable_linux()->set_rootfspropagation("sideways");
  CHECK(Contains(Refused(s), "linux.rootfsPropagation"));
}

TEST_CASE("sysctls: namespaced only, with their namespace") {
  grpc::Spec s = MinimalSpec();
  (*s.mutable_linux()->mutable_sysctl())["kernel.shmmax"] = "1";
  CHECK(Contains(Refused(s), "needs an ipc namespace"));
  s.mutable_linux()->add_namespaces()->set_type("ipc");
  CHECK(ParseSpec(s).ok());
  (*s.mutable_linux()->mutable_sysctl())["net.ipv4.ip_forward"] = "1";
  CHECK(ParseSpec(s).ok());
  (*s.mutable_linux()->mutable_sysctl())["vm.swappiness"] = "1";
  CHECK(Contains(Refused(s), "vm.swappiness"));
  s.mutable_linux()->mutable_sysctl()->erase("vm.swappiness");
  (*s.mutable_linux()->mutable_sysctl())["net/../../x"] = "1";
  CHECK(Contains(Refused(s), "not a sysctl name"));
  CHECK(SysctlPath("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward");
}

TEST_CASE("ids as upstream checks them") {
  CHECK(ValidateId("container_id", "abc").ok());
  CHECK(ValidateId("container_id", "a1.b-c_d").ok());
  CHECK(!ValidateId("container_id", "a").ok());
  CHECK(!ValidateId("container_id", "-a").ok());
  CHECK(!ValidateId("container_id", "a/b").ok());
  CHECK(!ValidateId("container_id", "../x").ok());
  CHECK(!ValidateId("container_id", std::string(257, 'a')).ok());
}

TEST_CASE("the agent's rewrite: root, pid namespace, mount namespace, hostname") {
  grpc::Spec s = MinimalSpec();
  s.mutable_root()->set_path("rootfs");
  auto* pid = s.mutable_linux()->add_namespaces();
  pid->set_type("pid");
  pid->set_path("/proc/99/ns/pid");  // a host path: ignored
  s.mutable_linux()->add_namespaces()->set_type("uts");
  RewriteSpecForInit({"/run/kata-containers/c1", "", "podname"}, &s);
  StatusOr<ContainerSpec> r = ParseSpec(s);
  REQUIRE(r.ok());
  CHECK(r->root_path == "/run/kata-containers/c1/rootfs");
  CHECK(r->NewNamespace(NsType::kPid));
  CHECK(r->NewNamespace(NsType::kMount));
  CHECK(r->hostname == "podname");

  grpc::Spec t = MinimalSpec();
  t.mutable_linux()->add_namespaces()->set_type("mount");
  t.set_hostname("");
  RewriteSpecForInit({"/b", "/proc/1/fd/7", "podname"}, &t);
  r = ParseSpec(t);
  REQUIRE(r.ok());
  CHECK(r->root_path == "/rootfs");  // absolute: unchanged
  CHECK(r->FindNamespace(NsType::kPid)->path == "/proc/1/fd/7");
  CHECK(r->hostname.empty());  // no uts namespace of its own
  int mounts = 0;
  for (const auto& n : r->namespaces) mounts += n.type == NsType::kMount;
  CHECK(mounts == 1);
}

TEST_CASE("mount options") {
  StatusOr<MountOptions> o =
      ParseMountOptions({"rbind", "ro", "nosuid", "rprivate", "mode=755", "size=1m"});
  REQUIRE(o.ok());
  CHECK(o->bind());
  CHECK((o->flags & MS_REC));
  CHECK((o->flags & MS_RDONLY));
  CHECK((o->flags & MS_NOSUID));
  CHECK(o->propagation == (MS_PRIVATE | MS_REC));
  CHECK(o->data == "mode=755,size=1m");

  o = ParseMountOptions({"ro", "rw", "noexec", "exec", "dev"});
  REQUIRE(o.ok());
  CHECK(!(o->flags & MS_RDONLY));
  CHECK((o->clear & MS_RDONLY));
  CHECK((o->clear & MS_NOEXEC));
  CHECK((o->clear & MS_NODEV));

  o = ParseMountOptions({"rro", "rnosuid", "rnoatime"});
  REQUIRE(o.ok());
  CHECK(o->rec_attr_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME));
  CHECK(o->rec_attr_clr == MOUNT_ATTR__ATIME);
  CHECK(o->flags == 0);

  CHECK(!ParseMountOptions({"idmap"}).ok());
  CHECK(!ParseMountOptions({"a,b"}).ok());
  CHECK(MountAttrsOf(MS_RDONLY | MS_NODEV | MS_STRICTATIME) ==
        (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME));
  CHECK(*ParsePropagation("rslave") == (MS_SLAVE | MS_REC));
  CHECK(!ParsePropagation("sideways").ok());
}

TEST_CASE("mount plan: /dev, /dev/pts and /dev/shm added where the spec has none") {
  grpc::Spec s = MinimalSpec();
  auto* m = s.add_mounts();
  m->set_destination("/proc");
  m->set_type("proc");
  ContainerSpec cs = *ParseSpec(s);
  auto plan = PlanMounts(cs);
  REQUIRE(plan.ok());
  REQUIRE(plan->size() == 4);
  CHECK((*plan)[0].spec.destination == "/dev");
  CHECK((*plan)[0].added);
  CHECK((*plan)[1].spec.destination == "/dev/pts");
  CHECK((*plan)[1].options.data == "newinstance,ptmxmode=0666,mode=0620,gid=5");
  CHECK((*plan)[2].spec.destination == "/dev/shm");
  CHECK((*plan)[3].spec.destination == "/proc");
  CHECK(!(*plan)[3].added);

  // The spec's own /dev: the defaults follow it, the spec's /dev/shm is kept.
  grpc::Spec t = MinimalSpec();
  m = t.add_mounts();
  m->set_destination("/proc");
  m->set_type("proc");
  m = t.add_mounts();
  m->set_destination("/dev");
  m->set_type("tmpfs");
  m = t.add_mounts();
  m->set_destination("/dev/shm");
  m->set_type("bind");
  m->set_source("/run/shm");
  m->add_options("rbind");
  plan = PlanMounts(*ParseSpec(t));
  REQUIRE(plan.ok());
  std::vector<std::string> dsts;
  for (auto& p : *plan) dsts.push_back(p.spec.destination);
  CHECK(dsts == std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm"});
  CHECK((*plan)[3].options.bind());
}

TEST_CASE("the mount that holds a path, from mountinfo") {
  const char* mi =
      "22 27 0:21 / /proc rw - proc proc rw\n"
      "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
      "40 27 0:40 / /run/kata\\040containers rw - tmpfs tmpfs rw\n"
      "41 40 0:41 / /run/kata\\040containers/c1 rw - tmpfs tmpfs rw\n";
  CHECK(MountPointOf(mi, "/tmp/x") == "/");
  CHECK(MountPointOf(mi, "/run/kata containers/c1/rootfs") == "/run/kata containers/c1");
  CHECK(MountPointOf(mi, "/run/kata containers/c10") == "/run/kata containers");
  CHECK(MountPointOf(mi, "/proc") == "/proc");
}

TEST_CASE("devices: defaults unless the spec overrides them") {
  grpc::Spec s = MinimalSpec();
  auto* d = s.mutable_linux()->add_devices();
  d->set_path("/dev/null");
  d->set_type("c");
  d->set_major(1);
  d->set_minor(3);
  d->set_filemode(0600);
  d = s.mutable_linux()->add_devices();
  d->set_path("/dev/fuse");
  d->set_type("c");
  d->set_major(10);
  d->set_minor(229);
  auto devs = DevicesToCreate(*ParseSpec(s));
  REQUIRE(devs.size() == 7);
  int nulls = 0;
  for (auto& x : devs) {
    if (x.path == "/dev/null") {
      nulls++;
      CHECK(x.file_mode == 0600);
    }
  }
  CHECK(nulls == 1);
  CHECK(devs.back().path == "/dev/fuse");
  CHECK(devs.back().file_mode == 0666);
}

TEST_CASE("namespace flags, id maps") {
  grpc::Spec s = MinimalSpec();
  s.mutable_linux()->add_namespaces()->set_type("user");
  s.mutable_linux()->add_namespaces()->set_type("mount");
  auto* n = s.mutable_linux()->add_namespaces();
  n->set_type("network");
  n->set_path("/var/run/netns/x");
  auto* u = s.mutable_linux()->add_uidmappings();
  u->set_containerid(0);
  u->set_hostid(100000);
  u->set_size(65536);
  *s.mutable_linux()->add_gidmappings() = *u;
  ContainerSpec cs = *ParseSpec(s);
  CHECK(NewNamespaceFlags(cs, false) == CLONE_NEWNS);
  CHECK(NewNamespaceFlags(cs, true) == (CLONE_NEWNS | CLONE_NEWUSER));
  CHECK(IdMapText(cs.uid_mappings) == "0 100000 65536\n");
  CHECK(IdMapped(cs.uid_mappings, 0));
  CHECK(IdMapped(cs.uid_mappings, 65535));
  CHECK(!IdMapped(cs.uid_mappings, 65536));
  CHECK(*NsTypeFromName("network") == NsType::kNet);
  CHECK(std::string(NsProcName(NsType::kMount)) == "mnt");
}

TEST_CASE("SIGTERM handled, as /proc/PID/status shows it") {
  std::string st =
      "Name:\tsh\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n"
      "SigIgn:\t0000000000000002\nSigCgt:\t0000000000000000\n";
  CHECK(!SignalHandledInStatus(st, SIGTERM));
  CHECK(SignalHandledInStatus(st, SIGINT));  // ignored counts, as upstream reads it
  st = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000004000\n";
  CHECK(SignalHandledInStatus(st, SIGTERM));
  CHECK(!SignalHandledInStatus(st, 0));
  CHECK(!SignalHandledInStatus(st, 65));
}

TEST_CASE("PATH of the process environment") {
  CHECK(PathFromEnv({"A=1", "PATH=/x:/y"}) == "/x:/y");
  CHECK(PathFromEnv({"A=1"}) == kDefaultPath);
}
