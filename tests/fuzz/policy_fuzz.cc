// The API policy: any document is accepted or refused with INVALID_ARGUMENT, never a crash;
// an accepted policy answers any ExecProcess or CopyFile request (the bytes after the
// document's first NUL, split on the next NULs as argv, or taken as a path) with OK,
// PERMISSION_DENIED or, for a request that does not parse, INVALID_ARGUMENT; and
// answers the same twice.
#include <cstdint>
#include <string>
#include <string_view>

#include "agent.pb.h"
#include "fuzz_util.h"
#include "policy/policy.h"

namespace {

bool Known(std::string_view m) {
  return m == "grpc.AgentService/ExecProcess" || m == "grpc.AgentService/CopyFile" ||
         m == "grpc.AgentService/CreateContainer" || m == "grpc.Health/Check";
}

bool Allowed(const absl::Status& st) {
  return st.ok() || st.code() == absl::StatusCode::kPermissionDenied ||
         st.code() == absl::StatusCode::kInvalidArgument;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view doc = in.substr(0, nul);
  std::string_view rest = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);

  absl::StatusOr<kata::Policy> p = kata::Policy::Parse(doc, Known);
  if (!p.ok()) {
    FUZZ_CHECK(p.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  grpc::ExecProcessRequest exec;
  size_t i = 0;
  while (i <= rest.size()) {
    size_t j = rest.find('\0', i);
    if (j == std::string_view::npos) j = rest.size();
    exec.mutable_process()->add_args(std::string(rest.substr(i, j - i)));
    i = j + 1;
  }
  grpc::CopyFileRequest copy;
  copy.set_path(std::string(rest));
  const std::string exec_bytes = exec.SerializeAsString();
  const std::string copy_bytes = copy.SerializeAsString();
  for (const auto& [method, bytes] :
       {std::pair<const char*, std::string_view>{"grpc.AgentService/ExecProcess", exec_bytes},
        {"grpc.AgentService/CopyFile", copy_bytes},
        {"grpc.AgentService/ExecProcess", rest},
        {"grpc.AgentService/CreateContainer", rest}}) {
    absl::Status a = p->Admit(method, bytes);
    absl::Status b = p->Admit(method, bytes);
    FUZZ_CHECK(Allowed(a));
    FUZZ_CHECK(a.code() == b.code());
  }
  return 0;
}
