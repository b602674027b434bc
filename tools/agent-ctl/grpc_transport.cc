#include <fcntl.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "transport.h"

namespace kata::ctl {
namespace {

class GrpcTransport : public Transport {
 public:
  explicit GrpcTransport(UniqueFd fd) {
    // gRPC needs a non-blocking fd (with a blocking one, calls hang until their deadline).
    int fl = fcntl(fd.get(), F_GETFL);
    fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
    channel_ = grpc::CreateCustomInsecureChannelFromFd("agent", fd.release(), args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
  }

  Status Call(const std::string& method, const std::string& request, std::string* response,
              std::chrono::milliseconds timeout) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    grpc::Slice slice(request);
    grpc::ByteBuffer req(&slice, 1), resp;
    grpc::CompletionQueue cq;
    auto call = stub_->PrepareUnaryCall(&ctx, "/" + method, req, &cq);
    call->StartCall();
    grpc::Status st;
    call->Finish(&resp, &st, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    if (!cq.Next(&tag, &ok)) return absl::InternalError("gRPC completion queue shut down");
    if (!st.ok()) return Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
    std::vector<grpc::Slice> slices;
    if (!resp.Dump(&slices).ok()) return absl::InternalError("cannot read the response");
    response->clear();
    for (const auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

}  // namespace

std::unique_ptr<Transport> MakeGrpcTransport(UniqueFd connected) {
  return std::make_unique<GrpcTransport>(std::move(connected));
}

}  // namespace kata::ctl
