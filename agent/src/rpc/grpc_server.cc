#include "rpc/grpc_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>

#include "rpc/worker_pool.h"
#include "util/log.h"

namespace kata {
namespace {

constexpr int kMaxMessageBytes = 4 * 1024 * 1024;

CallContext::Clock::time_point ToSteady(std::chrono::system_clock::time_point d) {
  if (d >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return CallContext::Clock::time_point::max();
  }
  auto left = d - std::chrono::system_clock::now();
  return CallContext::Clock::now() + std::chrono::duration_cast<CallContext::Clock::duration>(left);
}

grpc::Status ToGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

// One unary call: read the request, run the handler on a worker, write the response and
// finish. gRPC calls OnDone after Finish completed; only then is the reactor deleted.
class CallReactor final : public grpc::ServerGenericBidiReactor {
 public:
  CallReactor(const Dispatcher& d, grpc::GenericCallbackServerContext* sctx)
      : dispatcher_(d) {
    std::string method = sctx->method();
    if (!method.empty() && method[0] == '/') method.erase(0, 1);
    ctx_ = std::make_shared<CallContext>(std::move(method), ToSteady(sctx->deadline()));
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    WorkerPool::Default().Submit([this] { Run(); });
  }

  void OnWriteDone(bool /*ok*/) override {}
  void OnCancel() override { ctx_->cancel_token().Cancel(); }
  void OnDone() override { delete this; }

 private:
  void Run() {
    std::string in;
    std::vector<grpc::Slice> slices;
    if (!request_.Dump(&slices).ok()) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the request"));
      return;
    }
    for (const auto& s : slices) in.append(reinterpret_cast<const char*>(s.begin()), s.size());
    std::string out;
    Status st = dispatcher_.Call(*ctx_, in, &out);
    if (!st.ok()) {
      Finish(ToGrpc(st));
      return;
    }
    grpc::Slice slice(out);
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  const Dispatcher& dispatcher_;
  std::shared_ptr<CallContext> ctx_;
  grpc::ByteBuffer request_, response_;
};

}  // namespace

class GrpcServer::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(const Dispatcher& d) : dispatcher_(d) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new CallReactor(dispatcher_, ctx);
  }

 private:
  const Dispatcher& dispatcher_;
};

GrpcServer::GrpcServer(const Dispatcher& dispatcher) : dispatcher_(dispatcher) {}
GrpcServer::~GrpcServer() { Shutdown(); }

Status GrpcServer::Start() {
  service_ = std::make_unique<Service>(dispatcher_);
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  server_ = builder.BuildAndStart();
  if (!server_) return absl::InternalError("cannot start the gRPC server");
  return absl::OkStatus();
}

void GrpcServer::AddConnection(UniqueFd fd) {
  grpc::AddInsecureChannelFromFd(server_.get(), fd.release());
}

void GrpcServer::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_.reset();
  }
}

}  // namespace kata
