// CreateContainer's OCI spec (a serialized grpc.Spec) through the agent's conversion and
// validation (runtime/spec). Whatever ParseSpec accepts must hold what the later steps
// trust: runnable args, absolute clean destinations, never "/" as a mount destination;
// and the agent's own rewrite of an accepted spec must still be accepted (the set-up
// process parses the rewritten spec again).
#include <cstdint>

#include "fuzz_util.h"
#include "oci.pb.h"
#include "runtime/path.h"
#include "runtime/spec.h"

namespace {

bool CleanAbs(const std::string& p) {
  std::optional<std::string> c = kata::CleanAbsPath(p);
  return c && *c == p;
}

void CheckAccepted(const kata::ContainerSpec& s) {
  FUZZ_CHECK(!s.process.args.empty() && !s.process.args[0].empty());
  FUZZ_CHECK(!s.process.cwd.empty() && s.process.cwd[0] == '/');
  FUZZ_CHECK(!s.root_path.empty());
  for (const kata::MountSpec& m : s.mounts) {
    FUZZ_CHECK(CleanAbs(m.destination));
    FUZZ_CHECK(m.destination != "/");
  }
  for (const kata::DeviceSpec& d : s.devices) FUZZ_CHECK(CleanAbs(d.path));
  for (const std::string& p : s.masked_paths) FUZZ_CHECK(!p.empty() && p[0] == '/');
  for (const std::string& p : s.readonly_paths) FUZZ_CHECK(!p.empty() && p[0] == '/');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  grpc::Spec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;

  kata::StatusOr<kata::ContainerSpec> parsed = kata::ParseSpec(spec);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  CheckAccepted(*parsed);

  kata::SpecRewrite rw{"/run/kata-containers/c1", "/proc/1/ns/pid", "sandbox"};
  kata::RewriteSpecForInit(rw, &spec);
  kata::StatusOr<kata::ContainerSpec> again = kata::ParseSpec(spec);
  if (!again.ok()) {
    std::fprintf(stderr, "rewritten spec refused: %s\n", again.status().ToString().c_str());
  }
  FUZZ_CHECK(again.ok());
  CheckAccepted(*again);
  FUZZ_CHECK(again->root_path[0] == '/');
  FUZZ_CHECK(again->HasNamespace(kata::NsType::kPid) && again->HasNamespace(kata::NsType::kMount));
  return 0;
}
