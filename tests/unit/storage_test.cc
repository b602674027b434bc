// The storage layer's pure parts (uevents, PCI paths, SCSI addresses, mountinfo, Storage
// validation, device spec patching), the reference counting with fake mounts, the uevent
// waits, and CopyFile in a temp dir (no root needed).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "storage/block_devices.h"
#include "storage/container_devices.h"
#include "storage/copy_file.h"
#include "storage/mountinfo.h"
#include "storage/pci_path.h"
#include "storage/registry.h"
#include "storage/storage.h"
#include "storage/uevent.h"

using namespace kata;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/kata-unit-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string Slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Datagram(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    out += p;
    out.push_back('\0');
  }
  return out;
}

StorageSpec Spec(const std::string& mp, bool shared = false) {
  StorageSpec s;
  s.driver = "local";
  s.mount_point = mp;
  s.shared = shared;
  return s;
}

}  // namespace

TEST_CASE("uevent: a kernel datagram parses, udev's and malformed ones do not") {
  auto ev = ParseUevent(Datagram(
      {"add@/devices/pci0000:00/0000:00:03.0/0000:01:00.0/virtio2/block/vdb", "ACTION=add",
       "DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:01:00.0/virtio2/block/vdb", "SUBSYSTEM=block",
       "MAJOR=254", "MINOR=16", "DEVNAME=vdb", "DEVTYPE=disk", "SEQNUM=1234"}));
  REQUIRE(ev);
  CHECK(ev->action == "add");
  CHECK(ev->subsystem == "block");
  CHECK(ev->devname == "vdb");
  CHECK(ev->devtype == "disk");
  CHECK(ev->seqnum == 1234);
  CHECK_FALSE(ParseUevent(Datagram({"libudev", "ACTION=add", "DEVPATH=/devices/x"})));
  CHECK_FALSE(ParseUevent(Datagram({"add@/devices/x", "SUBSYSTEM=block"})));  // no ACTION
  CHECK_FALSE(ParseUevent(""));
  Uevent s = UeventFromSysfs("/devices/virtual/net/lo", "INTERFACE=lo\nIFINDEX=1\n", "add");
  CHECK(s.interface == "lo");
  CHECK(s.devpath == "/devices/virtual/net/lo");
}

TEST_CASE("PCI path: parse, print, reject") {
  auto p = ParsePciPath("02/00");
  REQUIRE(p.ok());
  CHECK(p->root_bus == "00");
  REQUIRE(p->hops.size() == 2);
  CHECK(p->hops[0] == PciSlotFn{2, 0});
  CHECK(p->ToString() == "02/00");
  auto f = ParsePciPath("1f.7/00.1");
  REQUIRE(f.ok());
  CHECK(f->hops[0] == PciSlotFn{0x1f, 7});
  CHECK(f->ToString() == "1f.7/00.1");
  auto pxb = ParsePciPath("20/00/02");
  REQUIRE(pxb.ok());
  CHECK(pxb->root_bus == "20");
  CHECK(pxb->hops.size() == 2);
  CHECK(pxb->ToString() == "20/00/02");
  for (const char* bad : {"", "02/", "/02", "20/00", "g0", "02.8", "123", "02//00", "02/00 "}) {
    INFO(bad);
    auto r = ParsePciPath(bad);
    if (std::string(bad) == "20/00") {
      CHECK_FALSE(r.ok());  // 0x20 is no slot, and two elements are not an expander path
    } else {
      CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    }
  }
  CHECK(PciPathFromSlots({3, 0})->ToString() == "03/00");
  CHECK_FALSE(PciPathFromSlots({}).ok());
  CHECK_FALSE(PciPathFromSlots({32}).ok());
}

TEST_CASE("PCI path: matched against device paths without sysfs") {
  const PciPath p = *ParsePciPath("03/00");
  std::string rest;
  CHECK(
      MatchPciDevpath("/devices/pci0000:00/0000:00:03.0/0000:01:00.0/virtio2/block/vdb", p, &rest));
  CHECK(rest == "virtio2/block/vdb");
  CHECK(IsVirtioBlockRest(rest));
  // A partition, the device itself, another slot, another function, a shorter path.
  CHECK(MatchPciDevpath("/devices/pci0000:00/0000:00:03.0/0000:01:00.0/virtio2/block/vdb/vdb1", p,
                        &rest));
  CHECK_FALSE(IsVirtioBlockRest(rest));
  CHECK(MatchPciDevpath("/devices/pci0000:00/0000:00:03.0/0000:01:00.0", p, &rest));
  CHECK(rest.empty());
  CHECK_FALSE(
      MatchPciDevpath("/devices/pci0000:00/0000:00:04.0/0000:02:00.0/virtio2/block/vdb", p, &rest));
  CHECK_FALSE(
      MatchPciDevpath("/devices/pci0000:00/0000:00:03.0/0000:01:00.1/virtio2/block/vdb", p, &rest));
  CHECK_FALSE(MatchPciDevpath("/devices/pci0000:00/0000:00:03.0", p, &rest));
  CHECK_FALSE(MatchPciDevpath("/devices/virtual/block/loop0", p, &rest));
  // Root bus device, net.
  const PciPath one = *ParsePciPath("05");
  CHECK(MatchPciDevpath("/devices/pci0000:00/0000:00:05.0/virtio4/net/eth1", one, &rest));
  CHECK(rest == "virtio4/net/eth1");
  CHECK_FALSE(IsVirtioBlockRest(rest));
  CHECK(IsNetInterfaceRest(rest));
  CHECK(IsNetInterfaceRest("net/eth0"));  // a NIC that is not virtio
  CHECK_FALSE(IsNetInterfaceRest("virtio4/net/"));
  CHECK_FALSE(IsNetInterfaceRest("virtio4/net/eth1/queues"));
  CHECK_FALSE(IsNetInterfaceRest("virtio2/block/vdb"));
  CHECK_FALSE(IsVirtioBlockRest("virtio/block/vda"));
  CHECK_FALSE(IsVirtioBlockRest("virtio1/block/"));
}

TEST_CASE("SCSI address and disk device paths") {
  auto a = ParseScsiAddress("0:1");
  REQUIRE(a.ok());
  CHECK(a->first == 0);
  CHECK(a->second == 1);
  for (const char* bad : {"", "0", "0:", ":1", "a:1", "0:1:2"}) {
    INFO(bad);
    CHECK(ParseScsiAddress(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  const char* disk = "/devices/pci0000:00/0000:00:04.0/virtio3/host0/target0:0:0/0:0:0:1/block/sdb";
  CHECK(MatchScsiDiskDevpath(disk, 0, 1));
  CHECK_FALSE(MatchScsiDiskDevpath(disk, 0, 0));
  CHECK_FALSE(MatchScsiDiskDevpath(disk, 1, 1));
  CHECK(MatchScsiDiskDevpath("/devices/x/host2/target2:0:3/2:0:3:0/block/sdc", 3, 0));
  CHECK_FALSE(
      MatchScsiDiskDevpath("/devices/x/host2/target2:1:3/2:1:3:0/block/sdc", 3, 0));  // channel 1
  CHECK_FALSE(MatchScsiDiskDevpath(std::string(disk) + "/sdb1", 0, 1));               // a partition
}

TEST_CASE("mountinfo: fields, escapes, the topmost mount") {
  const char* text =
      "22 1 0:21 / /run rw,nosuid - tmpfs tmpfs rw\n"
      "40 22 254:16 / /run/kata-containers/shared/containers/c1 rw shared:5 - ext4 /dev/vdb rw\n"
      "41 22 0:30 /sub /run/a\\040b rw - tmpfs none rw\n"
      "garbage line\n"
      "42 22 0:31 / /run rw - tmpfs second rw\n";
  auto all = ParseMountInfo(text);
  REQUIRE(all.size() == 4);
  CHECK(all[1].major == 254);
  CHECK(all[1].minor == 16);
  CHECK(all[1].fstype == "ext4");
  CHECK(all[1].source == "/dev/vdb");
  CHECK(all[2].mount_point == "/run/a b");
  CHECK(all[2].root == "/sub");
  const MountEntry* top = FindMount(all, "/run");
  REQUIRE(top);
  CHECK(top->source == "second");
  CHECK(FindMount(all, "/nowhere") == nullptr);
}

TEST_CASE("Storage: validated where it enters") {
  grpc::Storage s;
  s.set_driver("ephemeral");
  s.set_mount_point("/run/kata-containers/sandbox/ephemeral/v1/");
  s.add_options("size=1m,mode=1777");
  s.mutable_fs_group()->set_group_id(3000);
  s.mutable_fs_group()->set_group_change_policy(types::OnRootMismatch);
  auto p = ParseStorage(s);
  REQUIRE(p.ok());
  CHECK(p->mount_point == "/run/kata-containers/sandbox/ephemeral/v1");
  REQUIRE(p->fs_group);
  CHECK(p->fs_group->gid == 3000);
  CHECK(p->fs_group->on_root_mismatch);
  CHECK(OptionValue(p->options, "size") == std::optional<std::string>("1m"));
  CHECK(OptionValue(p->options, "mode") == std::optional<std::string>("1777"));
  CHECK_FALSE(OptionValue(p->options, "siz"));
  CHECK(SplitMountOptions({"trans=virtio,version=9p2000.L", "nodev", ""}).size() == 3);
  for (const char* mp : {"", "relative", "/", "/a/../b", "/a/..", "/..", "/a/b/../../.."}) {
    INFO(mp);
    s.set_mount_point(mp);
    CHECK(ParseStorage(s).status().code() == absl::StatusCode::kInvalidArgument);
  }
  s.set_mount_point("/ok");
  s.set_driver("");
  CHECK(ParseStorage(s).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(UnsupportedStorageDriver("watchable-bind").code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(UnsupportedStorageDriver("watchable-bind").message()).find("unsupported") == 0);
  CHECK(UnsupportedStorageDriver("blk").ok());
  CHECK(FindStorageDriver("virtio-fs") != nullptr);
  CHECK(FindStorageDriver("nosuch") == nullptr);
}

TEST_CASE("registry: shared by two owners, undone by the last") {
  std::vector<std::string> mounted, undone;
  StorageRegistry reg([&](const MountedStorage& m) {
    undone.push_back(m.mount_point);
    return absl::OkStatus();
  });
  auto mount = [&](const StorageSpec& s) -> StatusOr<MountedStorage> {
    mounted.push_back(s.mount_point);
    MountedStorage m;
    m.mount_point = s.mount_point;
    m.mounted = true;
    return m;
  };
  CallContext ctx;
  REQUIRE(reg.Acquire(ctx, "c1", {Spec("/v/a"), Spec("/v/b")}, mount).ok());
  REQUIRE(reg.Acquire(ctx, "c2", {Spec("/v/a")}, mount).ok());
  CHECK(mounted == std::vector<std::string>{"/v/a", "/v/b"});
  CHECK(reg.RefCount("/v/a") == 2);
  REQUIRE(reg.Release("c1").ok());
  CHECK(undone == std::vector<std::string>{"/v/b"});  // /v/a still has c2
  CHECK(reg.RefCount("/v/a") == 1);
  REQUIRE(reg.Release("c2").ok());
  CHECK(undone == std::vector<std::string>{"/v/b", "/v/a"});
  CHECK(reg.RefCount("/v/a") == -1);
  CHECK(reg.Release("c2").ok());  // nothing left: fine
}

TEST_CASE("registry: a failure releases what the call took; shared storages stay") {
  std::vector<std::string> undone;
  StorageRegistry reg([&](const MountedStorage& m) {
    undone.push_back(m.mount_point);
    return absl::OkStatus();
  });
  auto mount = [&](const StorageSpec& s) -> StatusOr<MountedStorage> {
    if (s.mount_point == "/v/bad") return absl::InvalidArgumentError("no such device");
    MountedStorage m;
    m.mount_point = s.mount_point;
    return m;
  };
  CallContext ctx;
  REQUIRE(reg.Acquire(ctx, "c1", {Spec("/v/a")}, mount).ok());
  Status st = reg.Acquire(ctx, "c2", {Spec("/v/a"), Spec("/v/new"), Spec("/v/bad")}, mount);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(undone == std::vector<std::string>{"/v/new"});
  CHECK(reg.RefCount("/v/a") == 1);
  CHECK(reg.RefCount("/v/bad") == -1);
  // Shared: kept at zero, reused, undone by ReleaseAll (newest first).
  REQUIRE(reg.Acquire(ctx, "", {Spec("/share", true)}, mount).ok());
  REQUIRE(reg.Acquire(ctx, "c3", {Spec("/share/vol")}, mount).ok());
  REQUIRE(reg.Release("").ok());
  CHECK(reg.RefCount("/share") == 0);
  undone.clear();
  REQUIRE(reg.ReleaseAll().ok());
  CHECK(undone == std::vector<std::string>{"/share/vol", "/share", "/v/a"});
  CHECK(reg.MountPoints().empty());
}

TEST_CASE("registry: a second request waits for the first one's mount, then shares it") {
  StorageRegistry reg([](const MountedStorage&) { return absl::OkStatus(); });
  std::atomic<int> mounts{0};
  std::atomic<bool> release{false};
  auto slow_mount = [&](const StorageSpec& s) -> StatusOr<MountedStorage> {
    mounts++;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    MountedStorage m;
    m.mount_point = s.mount_point;
    return m;
  };
  Status a, b;
  std::thread t1([&] {
    CallContext ctx;
    a = reg.Acquire(ctx, "c1", {Spec("/v/x")}, slow_mount);
  });
  while (mounts == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread t2([&] {
    CallContext ctx;
    b = reg.Acquire(ctx, "c2", {Spec("/v/x")}, slow_mount);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release = true;
  t1.join();
  t2.join();
  CHECK(a.ok());
  CHECK(b.ok());
  CHECK(mounts == 1);
  CHECK(reg.RefCount("/v/x") == 2);
}

TEST_CASE("uevent monitor: recorded devices, later events, removal, timeout") {
  UeventMonitor m;  // not started: events come through Record
  Uevent disk;
  disk.action = "add";
  disk.subsystem = "block";
  disk.devname = "vdb";
  disk.devpath = "/devices/pci0000:00/0000:00:03.0/0000:01:00.0/virtio2/block/vdb";
  m.Record(disk);
  auto is_vdb = [](const Uevent& e) { return e.devname == "vdb"; };
  auto is_vdc = [](const Uevent& e) { return e.devname == "vdc"; };
  CallContext ctx;
  auto got = m.WaitFor(ctx, is_vdb, std::chrono::milliseconds(10), "vdb");
  REQUIRE(got.ok());  // recorded before the wait
  CHECK(got->devpath == disk.devpath);

  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Uevent c = disk;
    c.devname = "vdc";
    c.devpath = "/devices/pci0000:00/0000:00:04.0/0000:02:00.0/virtio3/block/vdc";
    m.Record(c);
  });
  auto t0 = std::chrono::steady_clock::now();
  auto c = m.WaitFor(ctx, is_vdc, std::chrono::seconds(5), "vdc");
  later.join();
  REQUIRE(c.ok());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));

  Uevent rm = disk;
  rm.action = "remove";
  m.Record(rm);
  bool own = false;
  auto gone = m.WaitFor(ctx, is_vdb, std::chrono::milliseconds(100), "disk vdb", &own);
  CHECK(gone.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(own);
  CHECK(std::string(gone.status().message()).find("disk vdb") != std::string::npos);

  // The call's own deadline ends the wait first: not the wait's own timeout.
  CallContext short_ctx("m", CallContext::Clock::now() + std::chrono::milliseconds(50));
  auto cut = m.WaitFor(short_ctx, is_vdb, std::chrono::seconds(5), "vdb", &own);
  CHECK(cut.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK_FALSE(own);
}

TEST_CASE("devices: the spec's entry and resource rules get the guest numbers") {
  grpc::Spec spec;
  auto* lx = spec.mutable_linux();
  auto* d = lx->add_devices();
  d->set_path("/dev/xda");
  d->set_type("b");
  d->set_major(8);
  d->set_minor(0);
  auto* other = lx->add_devices();
  other->set_path("/dev/other");
  other->set_type("c");
  other->set_major(8);
  other->set_minor(0);
  auto* rule = lx->mutable_resources()->add_devices();
  rule->set_allow(true);
  rule->set_type("b");
  rule->set_major(8);
  rule->set_minor(0);
  rule->set_access("rw");
  DeviceUpdate u{"/dev/xda", "/dev/vdb", 'b', 254, 16};
  REQUIRE(PatchSpecDevices({u}, &spec).ok());
  CHECK(spec.linux().devices(0).major() == 254);
  CHECK(spec.linux().devices(0).minor() == 16);
  CHECK(spec.linux().devices(1).major() == 8);  // another path: untouched
  CHECK(spec.linux().resources().devices(0).major() == 254);
  REQUIRE(spec.linux().resources().devices_size() == 2);
  CHECK(spec.linux().resources().devices(1).access() == "rwm");
  CHECK(spec.linux().resources().devices(1).minor() == 16);

  DeviceUpdate missing{"/dev/nothere", "/dev/vdc", 'b', 254, 32};
  CHECK(PatchSpecDevices({missing}, &spec).code() == absl::StatusCode::kInvalidArgument);
  CHECK(PatchSpecDevices({u, u}, &spec).code() == absl::StatusCode::kInvalidArgument);

  google::protobuf::RepeatedPtrField<grpc::Device> devs;
  auto* v = devs.Add();
  v->set_type("vfio-pci");
  v->set_id("02/00");
  v->set_container_path("/dev/vfio/1");
  Status st = ValidateDevices(devs);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("unsupported") != std::string::npos);
  v->set_type("blk");
  CHECK(ValidateDevices(devs).ok());
  v->set_container_path("");
  CHECK_FALSE(ValidateDevices(devs).ok());
}

TEST_CASE("CopyFile: path rules") {
  const std::string root = "/run/kata-containers";
  CHECK(*CopyFileRelativePath(root, "/run/kata-containers/shared/containers/x") ==
        "shared/containers/x");
  for (const char* bad :
       {"/etc/passwd", "/run/kata-containers", "/run/kata-containers/", "/run/kata-containersX/a",
        "/run/kata-containers/a/../../../etc/x", "/run/kata-containers/./a",
        "/run/kata-containers//a", "relative/a", "/run/kata-containers/a/"}) {
    INFO(bad);
    CHECK(CopyFileRelativePath(root, bad).status().code() == absl::StatusCode::kPermissionDenied);
  }
}

TEST_CASE("CopyFile: chunks, atomic rename, modes, symlink escapes refused") {
  TempDir t;
  const std::string root = t.path + "/root";
  const std::string target = root + "/shared/containers/file";
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>((i * 7919) >> 3);
  REQUIRE(mkdir(root.c_str(), 0755) == 0);
  REQUIRE(mkdir((root + "/shared").c_str(), 0755) == 0);
  REQUIRE(mkdir((root + "/shared/containers").c_str(), 0755) == 0);
  {
    std::ofstream old(target);
    old << "old content";
  }
  const size_t chunk = 1 << 20;
  for (size_t off = 0; off < data.size(); off += chunk) {
    CopyFileChunk c;
    c.path = target;
    c.file_size = static_cast<int64_t>(data.size());
    c.file_mode = S_IFREG | 0640;
    c.dir_mode = 0750;
    c.offset = static_cast<int64_t>(off);
    c.data = std::string_view(data).substr(off, chunk);
    REQUIRE(CopyFileChunkTo(root, c).ok());
    if (off + chunk < data.size()) CHECK(Slurp(target) == "old content");  // not yet replaced
  }
  CHECK(Slurp(target) == data);
  struct stat st;
  REQUIRE(stat(target.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(access((target + ".kata-copy").c_str(), F_OK) != 0);

  // Parents made with dir_mode; a directory; a symlink.
  CopyFileChunk c;
  c.path = root + "/new/deeper/f";
  c.file_mode = S_IFREG | 0600;
  c.dir_mode = 0711;
  c.file_size = 2;
  c.data = "hi";
  REQUIRE(CopyFileChunkTo(root, c).ok());
  REQUIRE(stat((root + "/new/deeper").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0711);
  c.path = root + "/adir";
  c.file_mode = S_IFDIR | 01775;
  c.file_size = 0;
  c.data = "";
  REQUIRE(CopyFileChunkTo(root, c).ok());
  REQUIRE(stat(c.path.c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 01775);
  c.path = root + "/link";
  c.file_mode = S_IFLNK | 0777;
  c.data = "adir";
  c.file_size = 4;
  REQUIRE(CopyFileChunkTo(root, c).ok());
  char buf[64];
  ssize_t n = readlink(c.path.c_str(), buf, sizeof buf);
  CHECK(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == "adir");

  // Escapes: an absolute symlink and a ".." one in the parents.
  REQUIRE(mkdir((t.path + "/outside").c_str(), 0755) == 0);
  REQUIRE(symlink((t.path + "/outside").c_str(), (root + "/abs").c_str()) == 0);
  REQUIRE(symlink("../../outside", (root + "/shared/rel").c_str()) == 0);
  for (const std::string& p : {root + "/abs/x", root + "/shared/rel/x", root + "/abs/new/x"}) {
    INFO(p);
    CopyFileChunk e;
    e.path = p;
    e.file_mode = S_IFREG | 0644;
    e.file_size = 1;
    e.data = "x";
    CHECK(CopyFileChunkTo(root, e).code() == absl::StatusCode::kPermissionDenied);
  }
  CHECK(access((t.path + "/outside/x").c_str(), F_OK) != 0);
  CHECK(access((t.path + "/outside/new").c_str(), F_OK) != 0);
  // A symlink that stays inside is followed.
  REQUIRE(symlink("shared", (root + "/inside").c_str()) == 0);
  c = CopyFileChunk{};
  c.path = root + "/inside/viaLink";
  c.file_mode = S_IFREG | 0644;
  c.file_size = 1;
  c.data = "y";
  REQUIRE(CopyFileChunkTo(root, c).ok());
  CHECK(Slurp(root + "/shared/viaLink") == "y");
  // A chunk past file_size.
  c.offset = 1;
  CHECK(CopyFileChunkTo(root, c).code() == absl::StatusCode::kInvalidArgument);
}
