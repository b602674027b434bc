#include <catch2/catch.hpp>

#include "agent.pb.h"
#include "policy/policy.h"
#include "util/json.h"

namespace kata {
namespace {

bool Known(std::string_view m) {
  return m == "grpc.AgentService/ExecProcess" || m == "grpc.AgentService/CopyFile" ||
         m == "grpc.AgentService/CreateContainer" || m == "grpc.AgentService/SetPolicy" ||
         m == "grpc.Health/Check";
}

Policy MustParse(std::string_view text) {
  StatusOr<Policy> p = Policy::Parse(text, Known);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return std::move(*p);
}

std::string ExecRequest(std::vector<std::string> argv) {
  grpc::ExecProcessRequest req;
  req.set_container_id("c");
  req.set_exec_id("e");
  for (auto& a : argv) req.mutable_process()->add_args(a);
  return req.SerializeAsString();
}

std::string CopyRequest(const std::string& path) {
  grpc::CopyFileRequest req;
  req.set_path(path);
  return req.SerializeAsString();
}

}  // namespace

TEST_CASE("policy: documents that are not ours are refused by name", "[policy]") {
  auto rego =
      Policy::Parse("package agent_policy\ndefault CreateContainerRequest := false\n", Known);
  REQUIRE(rego.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(rego.status().message()), Catch::Contains("Rego"));

  auto empty = Policy::Parse("  \n", Known);
  CHECK(empty.status().code() == absl::StatusCode::kInvalidArgument);

  auto bad_json = Policy::Parse("{\"version\": 1, \"allow\": [", Known);
  CHECK(bad_json.status().code() == absl::StatusCode::kInvalidArgument);

  auto unknown_field = Policy::Parse("{\"version\": 1, \"alow\": [\"Check\"]}", Known);
  REQUIRE(unknown_field.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(unknown_field.status().message()), Catch::Contains("alow"));

  auto version = Policy::Parse("{\"version\": 2}", Known);
  CHECK(version.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(version.status().message()), Catch::Contains("version must be 1"));

  auto wrong_type = Policy::Parse(R"({"version": 1, "allow": "Check"})", Known);
  CHECK_THAT(std::string(wrong_type.status().message()), Catch::Contains("array of strings"));

  auto nested_unknown = Policy::Parse(R"({"version": 1, "exec": {"allowedArgs": []}})", Known);
  CHECK_THAT(std::string(nested_unknown.status().message()), Catch::Contains("allowedArgs"));

  auto snake = Policy::Parse(R"({"version": 1, "copy_file": {"allowed_paths": ["/a/**"]}})", Known);
  CHECK(snake.ok());

  auto no_version = Policy::Parse("{}", Known);
  CHECK(no_version.status().code() == absl::StatusCode::kInvalidArgument);

  auto unknown_method = Policy::Parse("{\"version\": 1, \"allow\": [\"ExecProces\"]}", Known);
  REQUIRE(unknown_method.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(unknown_method.status().message()), Catch::Contains("\"ExecProces\""));

  auto mid_dots = Policy::Parse(
      R"({"version": 1, "exec": {"allowedArgv": [{"args": ["sh", "...", "x"]}]}})", Known);
  CHECK(mid_dots.status().code() == absl::StatusCode::kInvalidArgument);

  auto relative =
      Policy::Parse(R"({"version": 1, "copyFile": {"allowedPaths": ["tmp/*"]}})", Known);
  CHECK(relative.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("policy: method allow and deny lists", "[policy]") {
  Policy all = MustParse(R"({"version": 1})");
  CHECK(all.Admit("grpc.AgentService/CreateContainer", "").ok());
  CHECK(all.Admit("grpc.Health/Check", "").ok());

  Policy star = MustParse(R"({"version": 1, "allow": ["*"], "deny": ["SetPolicy"]})");
  CHECK(star.Admit("grpc.AgentService/CreateContainer", "").ok());
  CHECK(star.Admit("grpc.AgentService/SetPolicy", "").code() ==
        absl::StatusCode::kPermissionDenied);

  Policy some = MustParse(
      R"({"version": 1, "allow": ["Check", "grpc.AgentService/ExecProcess", "CreateContainer"],
          "deny": ["CreateContainer"]})");
  CHECK(some.Admit("grpc.Health/Check", "").ok());
  CHECK(some.Admit("grpc.AgentService/ExecProcess", ExecRequest({"ls"})).ok());
  Status denied = some.Admit("grpc.AgentService/CreateContainer", "");
  CHECK(denied.code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(denied.message()), Catch::Contains("CreateContainer"));
  CHECK(some.Admit("grpc.AgentService/CopyFile", "").code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("policy: ExecProcess argv patterns", "[policy]") {
  Policy p = MustParse(R"({"version": 1, "exec": {"allowedArgv": [
      {"args": ["/bin/echo", "..."]},
      {"args": ["sh", "-c", "echo *"]},
      {"args": ["cat", "/etc/[hp]*"]}]}})");
  CHECK(p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"/bin/echo"})).ok());
  CHECK(p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"/bin/echo", "a", "b"})).ok());
  CHECK(p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"sh", "-c", "echo hi"})).ok());
  CHECK(p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"cat", "/etc/hosts"})).ok());

  Status st = p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"sh", "-c", "rm -rf /"}));
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(st.message()), Catch::Contains("[\"sh\", \"-c\", \"rm -rf /\"]"));
  // No implicit trailing arguments without "...".
  CHECK_FALSE(
      p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"sh", "-c", "echo", "x"})).ok());
  CHECK_FALSE(p.Admit("grpc.AgentService/ExecProcess", ExecRequest({"cat", "/etc/shadow"})).ok());
  CHECK_FALSE(p.Admit("grpc.AgentService/ExecProcess", ExecRequest({})).ok());
  // Other methods are not constrained by exec rules.
  CHECK(p.Admit("grpc.AgentService/CreateContainer", "").ok());
  // A request that does not parse is refused, never admitted unseen.
  CHECK(p.Admit("grpc.AgentService/ExecProcess", std::string("\xff\xff\xff", 3)).code() ==
        absl::StatusCode::kInvalidArgument);

  Policy none = MustParse(R"({"version": 1, "exec": {}})");
  CHECK(none.Admit("grpc.AgentService/ExecProcess", ExecRequest({"true"})).code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("policy: CopyFile path patterns", "[policy]") {
  Policy p = MustParse(R"({"version": 1, "copyFile": {"allowedPaths": [
      "/run/kata-containers/shared/containers/**", "/etc/*.conf"]}})");
  auto admit = [&](const std::string& path) {
    return p.Admit("grpc.AgentService/CopyFile", CopyRequest(path));
  };
  CHECK(admit("/run/kata-containers/shared/containers/abc/rootfs/x").ok());
  CHECK(admit("/run/kata-containers/shared/containers//abc/./y").ok());
  CHECK(admit("/etc/resolv.conf").ok());
  CHECK_FALSE(admit("/run/kata-containers/shared/containers").ok());
  CHECK_FALSE(admit("/run/kata-containers/shared/containersX/a").ok());
  CHECK_FALSE(admit("/etc/sub/x.conf").ok());  // '*' does not cross '/'
  Status dots = admit("/run/kata-containers/shared/containers/../../../etc/passwd");
  CHECK(dots.code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(dots.message()), Catch::Contains(".."));
  CHECK_FALSE(admit("etc/resolv.conf").ok());
}

TEST_CASE("policy: installed once", "[policy]") {
  PolicyStore store;
  CHECK(store.Admit("grpc.AgentService/CreateContainer", "").ok());
  REQUIRE(store.Install(MustParse(R"({"version": 1, "deny": ["CreateContainer"]})"), "test").ok());
  CHECK(store.Admit("grpc.AgentService/CreateContainer", "").code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(store.denied_total() == 1);
  Status again = store.Install(MustParse(R"({"version": 1})"), "SetPolicy");
  CHECK(again.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(again.message()), Catch::Contains("test"));
  CHECK(store.Admit("grpc.AgentService/CreateContainer", "").code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("json: the strict reader", "[policy][json]") {
  auto doc = ParseJson(
      R"( {"a": [1, -2.5e3, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} )");
  REQUIRE(doc.ok());
  REQUIRE(doc->is_object());
  const Json* a = doc->Find("a");
  REQUIRE(a != nullptr);
  REQUIRE(a->array().size() == 5);
  CHECK(a->array()[1].number() == -2500);
  CHECK(a->array()[4].type() == Json::Type::kNull);
  CHECK(doc->Find("s")->string() == "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(doc->Find("missing") == nullptr);

  for (const char* bad :
       {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", "\"\x01\"", "\"\\x\"", "\"\\ud800\"",
        "\"\\udc00\"", "{\"a\":1,\"a\":2}", "[] []", "tru", "{a:1}", "\"unterminated"}) {
    INFO(bad);
    CHECK(ParseJson(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  std::string deep(kMaxJsonDepth + 2, '[');
  deep += std::string(kMaxJsonDepth + 2, ']');
  CHECK_THAT(std::string(ParseJson(deep).status().message()), Catch::Contains("too deep"));
  std::string ok_depth(kMaxJsonDepth, '[');
  ok_depth += std::string(kMaxJsonDepth, ']');
  CHECK(ParseJson(ok_depth).ok());
}

}  // namespace kata
