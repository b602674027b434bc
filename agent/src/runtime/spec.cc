#include "runtime/spec.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <set>

#include "runtime/exec.h"
#include "runtime/mounts.h"
#include "runtime/path.h"

namespace kata {
namespace {

struct NsInfo {
  NsType type;
  const char* name;  // OCI
  const char* proc;  // /proc/PID/ns/<proc>
  int flag;
};

constexpr NsInfo kNamespaces[] = {
    {NsType::kUser, "user", "user", CLONE_NEWUSER},
    {NsType::kMount, "mount", "mnt", CLONE_NEWNS},
    {NsType::kPid, "pid", "pid", CLONE_NEWPID},
    {NsType::kNet, "network", "net", CLONE_NEWNET},
    {NsType::kIpc, "ipc", "ipc", CLONE_NEWIPC},
    {NsType::kUts, "uts", "uts", CLONE_NEWUTS},
    {NsType::kCgroup, "cgroup", "cgroup", CLONE_NEWCGROUP},
    {NsType::kTime, "time", "time", CLONE_NEWTIME},
};

const NsInfo& Info(NsType t) {
  for (const auto& n : kNamespaces) {
    if (n.type == t) return n;
  }
  return kNamespaces[0];
}

Status Invalid(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(field, ": ", what));
}

std::string Quoted(std::string_view s) { return StrCat("\"", s, "\""); }

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// An absolute path that stays inside the root, cleaned; field names it in the error.
StatusOr<std::string> ContainerPath(std::string_view field, std::string_view p) {
  if (p.empty()) return Invalid(field, "empty path");
  if (HasNul(p)) return Invalid(field, "path contains a NUL byte");
  if (p[0] != '/') return Invalid(field, StrCat(Quoted(p), " is not an absolute path"));
  std::optional<std::string> c = CleanAbsPath(p, /*strict=*/true);
  if (!c) return Invalid(field, StrCat(Quoted(p), " escapes the container's root"));
  return *c;
}

// Sysctls a container may set, as runc allows them: the ones the kernel keeps per
// namespace, and only when the container has that namespace. net.* are also allowed
// without a network namespace: in a Kata VM the guest's network namespace is the pod's.
Status CheckSysctl(const ContainerSpec& s, const std::string& key) {
  std::string field = StrCat("linux.sysctl[", Quoted(key), "]");
  if (key.empty() || key.find("..") != std::string::npos || key.find('/') != std::string::npos ||
      HasNul(key) || key.front() == '.' || key.back() == '.') {
    return Invalid(field, "not a sysctl name");
  }
  static const std::set<std::string> kIpc = {
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  if (kIpc.count(key) || key.rfind("fs.mqueue.", 0) == 0) {
    if (!s.HasNamespace(NsType::kIpc)) return Invalid(field, "needs an ipc namespace");
    return absl::OkStatus();
  }
  if (key == "kernel.hostname" || key == "kernel.domainname") {
    if (!s.HasNamespace(NsType::kUts)) return Invalid(field, "needs a uts namespace");
    return absl::OkStatus();
  }
  if (key.rfind("net.", 0) == 0) return absl::OkStatus();
  return Invalid(field, "not a namespaced sysctl (the kernel shares it with the whole guest)");
}

StatusOr<uint64_t> ParseCapList(std::string_view field,
                                const google::protobuf::RepeatedPtrField<std::string>& names) {
  uint64_t mask = 0;
  for (int i = 0; i < names.size(); i++) {
    std::optional<int> cap = CapFromName(names[i]);
    if (!cap) {
      return Invalid(StrCat(field, "[", i, "]"), StrCat("unknown capability ", Quoted(names[i])));
    }
    mask |= uint64_t{1} << *cap;
  }
  return mask;
}

Status ParseCapabilities(const grpc::LinuxCapabilities& c, CapSets* out) {
  const std::string f = "process.capabilities.";
  ASSIGN_OR_RETURN(out->bounding, ParseCapList(f + "bounding", c.bounding()));
  ASSIGN_OR_RETURN(out->effective, ParseCapList(f + "effective", c.effective()));
  ASSIGN_OR_RETURN(out->inheritable, ParseCapList(f + "inheritable", c.inheritable()));
  ASSIGN_OR_RETURN(out->permitted, ParseCapList(f + "permitted", c.permitted()));
  ASSIGN_OR_RETURN(out->ambient, ParseCapList(f + "ambient", c.ambient()));
  return absl::OkStatus();
}

Status ParseRlimits(const google::protobuf::RepeatedPtrField<grpc::POSIXRlimit>& in,
                    std::vector<RlimitSpec>* out) {
  std::set<int> seen;
  for (int i = 0; i < in.size(); i++) {
    std::string field = StrCat("process.rlimits[", i, "]");
    const grpc::POSIXRlimit& r = in[i];
    std::optional<int> res = RlimitFromName(r.type());
    if (!res) return Invalid(field + ".type", StrCat("unknown rlimit ", Quoted(r.type())));
    if (!seen.insert(*res).second)
      return Invalid(field + ".type", StrCat(Quoted(r.type()), " listed twice"));
    if (r.soft() > r.hard()) {
      return Invalid(field, StrCat("soft limit ", r.soft(), " above the hard limit ", r.hard()));
    }
    out->push_back({*res, r.type(), r.soft(), r.hard()});
  }
  return absl::OkStatus();
}

}  // namespace

Status ParseProcessSpec(const grpc::Process& p, ProcessSpec* out) {
  out->terminal = p.terminal();
  if (p.has_consolesize()) {
    if (p.consolesize().height() > 0xffff || p.consolesize().width() > 0xffff) {
      return Invalid("process.consoleSize", "larger than 65535");
    }
    out->console_size = {p.consolesize().height(), p.consolesize().width()};
  }
  if (p.args().empty()) return Invalid("process.args", "empty: nothing to run");
  for (int i = 0; i < p.args_size(); i++) {
    if (HasNul(p.args(i))) return Invalid(StrCat("process.args[", i, "]"), "contains a NUL byte");
    out->args.push_back(p.args(i));
  }
  if (out->args[0].empty()) return Invalid("process.args[0]", "empty executable name");
  for (int i = 0; i < p.env_size(); i++) {
    const std::string& e = p.env(i);
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0 || HasNul(e)) {
      return Invalid(StrCat("process.env[", i, "]"), StrCat(Quoted(e), " is not KEY=value"));
    }
    out->env.push_back(e);
  }
  if (!p.cwd().empty()) {
    if (p.cwd()[0] != '/')
      return Invalid("process.cwd", StrCat(Quoted(p.cwd()), " is not an absolute path"));
    ASSIGN_OR_RETURN(out->cwd, ContainerPath("process.cwd", p.cwd()));
  }
  out->uid = p.user().uid();
  out->gid = p.user().gid();
  for (uint32_t g : p.user().additionalgids()) out->additional_gids.push_back(g);
  out->username = p.user().username();
  out->no_new_privileges = p.nonewprivileges();
  if (p.has_capabilities()) {
    CapSets caps;
    RETURN_IF_ERROR(ParseCapabilities(p.capabilities(), &caps));
    out->capabilities = caps;
  }
  RETURN_IF_ERROR(ParseRlimits(p.rlimits(), &out->rlimits));
  uint64_t stack_limit = kDefaultStackLimit;
  for (const RlimitSpec& r : out->rlimits) {
    if (r.resource == RLIMIT_STACK) stack_limit = r.soft;
  }
  RETURN_IF_ERROR(CheckExecArgs(out->args, out->env, stack_limit));
  if (p.oomscoreadj() < -1000 || p.oomscoreadj() > 1000) {
    return Invalid("process.oomScoreAdj", StrCat(p.oomscoreadj(), " is not in -1000..1000"));
  }
  out->oom_score_adj = static_cast<int>(p.oomscoreadj());
  out->apparmor_profile = p.apparmorprofile();
  out->selinux_label = p.selinuxlabel();
  return absl::OkStatus();
}

namespace {

Status ParseIdMappings(std::string_view field,
                       const google::protobuf::RepeatedPtrField<grpc::LinuxIDMapping>& in,
                       std::vector<IdMapping>* out) {
  for (int i = 0; i < in.size(); i++) {
    if (in[i].size() == 0) return Invalid(StrCat(field, "[", i, "].size"), "zero");
    out->push_back({in[i].containerid(), in[i].hostid(), in[i].size()});
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<NsType> NsTypeFromName(std::string_view name) {
  for (const auto& n : kNamespaces) {
    if (name == n.name) return n.type;
  }
  return std::nullopt;
}

const char* NsTypeName(NsType t) { return Info(t).name; }
int NsCloneFlag(NsType t) { return Info(t).flag; }
const char* NsProcName(NsType t) { return Info(t).proc; }

const NamespaceSpec* ContainerSpec::FindNamespace(NsType t) const {
  for (const auto& n : namespaces) {
    if (n.type == t) return &n;
  }
  return nullptr;
}

Status ValidateId(std::string_view what, std::string_view id) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool ok = id.size() >= 2 && id.size() <= 256 && alnum(id[0]);
  for (size_t i = 1; ok && i < id.size(); i++) {
    char c = id[i];
    ok = alnum(c) || c == '.' || c == '-' || c == '_';
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        StrCat(what, ": invalid id ", Quoted(id),
               " (want ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$, at most 256 characters)"));
  }
  return absl::OkStatus();
}

StatusOr<ContainerSpec> ParseSpec(const grpc::Spec& spec) {
  ContainerSpec s;
  if (!spec.has_process()) return Invalid("process", "missing");
  RETURN_IF_ERROR(ParseProcessSpec(spec.process(), &s.process));

  if (!spec.has_root() || spec.root().path().empty()) return Invalid("root.path", "missing");
  if (HasNul(spec.root().path())) return Invalid("root.path", "contains a NUL byte");
  s.root_path = spec.root().path();
  s.root_readonly = spec.root().readonly();

  if (spec.hostname().size() > 64 || HasNul(spec.hostname())) {
    return Invalid("hostname", "longer than 64 bytes or contains a NUL byte");
  }
  s.hostname = spec.hostname();

  for (int i = 0; i < spec.mounts_size(); i++) {
    const grpc::Mount& m = spec.mounts(i);
    std::string field = StrCat("mounts[", i, "]");
    MountSpec ms;
    ASSIGN_OR_RETURN(ms.destination, ContainerPath(field + ".destination", m.destination()));
    if (ms.destination == "/")
      return Invalid(field + ".destination", "cannot mount over the container's root");
    ms.source = m.source();
    ms.type = m.type();
    for (const auto& o : m.options()) ms.options.push_back(o);
    StatusOr<MountOptions> mo = ParseMountOptions(ms.options);
    if (!mo.ok()) return Invalid(field + ".options", std::string(mo.status().message()));
    if ((mo->bind() || ms.type == "bind" || ms.type == "rbind") &&
        (ms.source.empty() || ms.source[0] != '/')) {
      return Invalid(field + ".source",
                     StrCat(Quoted(ms.source), " is not an absolute path (bind mount)"));
    }
    if (!mo->bind() && ms.type != "bind" && ms.type != "rbind" && ms.type.empty()) {
      return Invalid(field + ".type", "missing filesystem type");
    }
    s.mounts.push_back(std::move(ms));
  }

  const grpc::Linux& l = spec.linux();
  std::set<NsType> seen;
  for (int i = 0; i < l.namespaces_size(); i++) {
    const auto& n = l.namespaces(i);
    std::string field = StrCat("linux.namespaces[", i, "]");
    std::optional<NsType> t = NsTypeFromName(n.type());
    if (!t) return Invalid(field + ".type", StrCat("unknown namespace type ", Quoted(n.type())));
    if (!seen.insert(*t).second)
      return Invalid(field + ".type", StrCat(Quoted(n.type()), " listed twice"));
    if (!n.path().empty() && (n.path()[0] != '/' || HasNul(n.path()))) {
      return Invalid(field + ".path", StrCat(Quoted(n.path()), " is not an absolute path"));
    }
    s.namespaces.push_back({*t, n.path()});
  }
  RETURN_IF_ERROR(ParseIdMappings("linux.uidMappings", l.uidmappings(), &s.uid_mappings));
  RETURN_IF_ERROR(ParseIdMappings("linux.gidMappings", l.gidmappings(), &s.gid_mappings));
  if (s.NewNamespace(NsType::kUser) && (s.uid_mappings.empty() || s.gid_mappings.empty())) {
    return Invalid("linux.uidMappings", "a new user namespace needs uid and gid mappings");
  }
  if (!s.NewNamespace(NsType::kUser) && (!s.uid_mappings.empty() || !s.gid_mappings.empty())) {
    return Invalid("linux.uidMappings", "mappings given without a new user namespace");
  }
  if (!s.hostname.empty() && !s.HasNamespace(NsType::kUts)) {
    return Invalid("hostname", "setting a hostname needs a uts namespace");
  }

  for (int i = 0; i < l.devices_size(); i++) {
    const auto& d = l.devices(i);
    std::string field = StrCat("linux.devices[", i, "]");
    DeviceSpec ds;
    ASSIGN_OR_RETURN(ds.path, ContainerPath(field + ".path", d.path()));
    if (d.type().size() != 1 ||
        std::string_view("cbup").find(d.type()[0]) == std::string_view::npos) {
      return Invalid(field + ".type", StrCat(Quoted(d.type()), " is not one of c, b, u, p"));
    }
    ds.type = d.type()[0];
    if (d.major() < 0 || d.minor() < 0 || d.major() > 0xfff || d.minor() > 0xfffff) {
      return Invalid(field, "major/minor out of range");
    }
    ds.major = d.major();
    ds.minor = d.minor();
    ds.file_mode = d.filemode() ? (d.filemode() & 07777) : 0666;
    ds.uid = d.uid();
    ds.gid = d.gid();
    s.devices.push_back(std::move(ds));
  }

  for (const auto& [k, v] : l.sysctl()) {
    RETURN_IF_ERROR(CheckSysctl(s, k));
    if (HasNul(v))
      return Invalid(StrCat("linux.sysctl[", Quoted(k), "]"), "value contains a NUL byte");
    s.sysctls[k] = v;
  }

  if (!l.rootfspropagation().empty()) {
    StatusOr<unsigned long> p = ParsePropagation(l.rootfspropagation());
    if (!p.ok()) return Invalid("linux.rootfsPropagation", std::string(p.status().message()));
    s.rootfs_propagation = *p;
  }
  for (int i = 0; i < l.maskedpaths_size(); i++) {
    ASSIGN_OR_RETURN(std::string p,
                     ContainerPath(StrCat("linux.maskedPaths[", i, "]"), l.maskedpaths(i)));
    s.masked_paths.push_back(std::move(p));
  }
  for (int i = 0; i < l.readonlypaths_size(); i++) {
    ASSIGN_OR_RETURN(std::string p,
                     ContainerPath(StrCat("linux.readonlyPaths[", i, "]"), l.readonlypaths(i)));
    s.readonly_paths.push_back(std::move(p));
  }
  if (l.has_seccomp()) {
    ASSIGN_OR_RETURN(SeccompSpec sc, ParseSeccomp(l.seccomp()));
    s.seccomp = std::move(sc);
  }
  return s;
}

void RewriteSpecForInit(const SpecRewrite& rw, grpc::Spec* spec) {
  grpc::Root* root = spec->mutable_root();
  if (!root->path().empty() && root->path()[0] != '/') {
    root->set_path(rw.bundle_dir + "/" + root->path());
  }
  grpc::Linux* l = spec->mutable_linux();
  auto* nss = l->mutable_namespaces();
  bool has_mount = false, new_uts = false;
  for (int i = 0; i < nss->size();) {
    const std::string& t = (*nss)[i].type();
    if (t == "pid") {
      nss->DeleteSubrange(i, 1);
      continue;
    }
    if (t == "mount") has_mount = true;
    if (t == "uts" && (*nss)[i].path().empty()) new_uts = true;
    i++;
  }
  grpc::LinuxNamespace* pid = l->add_namespaces();
  pid->set_type("pid");
  pid->set_path(rw.pid_ns_path);
  if (!has_mount) l->add_namespaces()->set_type("mount");
  if (spec->hostname().empty() && new_uts && !rw.default_hostname.empty()) {
    spec->set_hostname(rw.default_hostname);
  }
}

}  // namespace kata
