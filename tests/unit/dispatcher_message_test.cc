// Error messages through the dispatcher: cut to kMaxErrorMessage (they travel as a gRPC
// header, which clients refuse above 8 KiB), the code kept.
#include <catch2/catch.hpp>
#include <string>

#include "rpc/call_context.h"
#include "rpc/dispatcher.h"

using kata::CallContext;
using kata::Dispatcher;
using kata::Status;

TEST_CASE("dispatcher: a long error message is cut, its code kept", "[rpc]") {
  Dispatcher d;
  d.AddRaw("svc/Long", [](CallContext&, std::string_view, std::string*) -> Status {
    return absl::InvalidArgumentError("container_id: invalid id \"" + std::string(10240, 'a') +
                                      "\"");
  });
  d.AddRaw("svc/Short", [](CallContext&, std::string_view, std::string*) -> Status {
    return absl::NotFoundError("container c1 not found");
  });
  std::string out;
  CallContext lc("svc/Long");
  Status st = d.Call(lc, "", &out);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(st.message().size() == Dispatcher::kMaxErrorMessage);
  CHECK(st.message().rfind("container_id: invalid id \"aaa", 0) == 0);
  CHECK(st.message().find("... (10267 bytes in all)") != std::string::npos);

  CallContext sc("svc/Short");
  st = d.Call(sc, "", &out);
  CHECK(st.code() == absl::StatusCode::kNotFound);
  CHECK(st.message() == "container c1 not found");

  // An unknown method's name comes from the client (up to a 4 MiB ttrpc frame).
  CallContext uc("svc/" + std::string(1 << 20, 'm'));
  st = d.Call(uc, "", &out);
  CHECK(st.code() == absl::StatusCode::kUnimplemented);
  CHECK(st.message().size() <= Dispatcher::kMaxErrorMessage);
}
