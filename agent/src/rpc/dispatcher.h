// The method table shared by the gRPC and ttrpc servers.
//
// Handlers are registered under their full method name ("grpc.AgentService/WaitProcess",
// as in the gRPC path without the leading '/'). A transport hands the dispatcher the
// method name and the serialized request and gets back a status and the serialized
// response; typed handlers see protobuf messages only:
//
//   d.Add<grpc::CheckRequest, grpc::HealthCheckResponse>("grpc.Health/Check",
//       [](CallContext& ctx, const grpc::CheckRequest& req, grpc::HealthCheckResponse* resp) {
//         resp->set_status(grpc::HealthCheckResponse::SERVING);
//         return absl::OkStatus();
//       });
//
// Methods declared by the API but not registered answer UNIMPLEMENTED naming the method.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "rpc/call_context.h"
#include "util/status.h"
#include "util/strcat.h"

namespace kata {

class Dispatcher {
 public:
  using RawHandler =
      std::function<Status(CallContext& ctx, std::string_view request, std::string* response)>;

  // Declares every method of the given services (from the compiled-in descriptors), so
  // that unregistered ones answer UNIMPLEMENTED rather than "unknown method".
  void DeclareServices(std::initializer_list<std::string_view> full_service_names);

  void AddRaw(std::string method, RawHandler handler);

  // Runs before every registered handler (the API policy); an error is the call's answer.
  // Set once, before the servers start.
  using Admission = std::function<Status(std::string_view method, std::string_view request)>;
  void SetAdmission(Admission admission) { admission_ = std::move(admission); }

  template <typename Req, typename Resp>
  void Add(std::string method, std::function<Status(CallContext&, const Req&, Resp*)> fn) {
    AddRaw(std::move(method),
           [fn = std::move(fn)](CallContext& ctx, std::string_view in, std::string* out) -> Status {
             Req req;
             if (!req.ParseFromArray(in.data(), static_cast<int>(in.size()))) {
               return absl::InvalidArgumentError(StrCat(
                   ctx.method(), ": the request is not a valid ", Req::descriptor()->full_name()));
             }
             Resp resp;
             RETURN_IF_ERROR(fn(ctx, req, &resp));
             if (!resp.SerializeToString(out)) {
               return absl::InternalError(StrCat(ctx.method(), ": cannot serialize the response"));
             }
             return absl::OkStatus();
           });
  }

  // Runs the handler for ctx.method(). Never throws. An error message longer than
  // kMaxErrorMessage is cut there: it travels as gRPC's grpc-message header (clients refuse
  // headers over 8 KiB: the call would fail with RESOURCE_EXHAUSTED instead of its own code)
  // and messages quote what the client sent (a 10 KiB id, a 3 MiB method name).
  static constexpr size_t kMaxErrorMessage = 1024;
  Status Call(CallContext& ctx, std::string_view request, std::string* response) const;

  bool Known(std::string_view method) const;

  // Per-method call and error counters, for metrics.
  struct Counters {
    uint64_t calls = 0, errors = 0;
  };
  std::unordered_map<std::string, Counters> Snapshot() const;

 private:
  struct Entry {
    RawHandler handler;
    mutable std::atomic<uint64_t> calls{0}, errors{0};
  };
  std::unordered_map<std::string, std::unique_ptr<Entry>> handlers_;
  std::unordered_set<std::string> declared_;
  Admission admission_;
};

}  // namespace kata
