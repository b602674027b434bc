#include "transport.h"

namespace kata::ctl {
namespace {

class TtrpcTransport : public Transport {
 public:
  explicit TtrpcTransport(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Call(const std::string&, const std::string&, std::string*, std::chrono::milliseconds) override {
    return absl::UnimplementedError("ttrpc is not available in this build of agent-ctl; use --proto grpc");
  }

 private:
  UniqueFd fd_;
};

}  // namespace

std::unique_ptr<Transport> MakeTtrpcTransport(UniqueFd connected) {
  return std::make_unique<TtrpcTransport>(std::move(connected));
}

}  // namespace kata::ctl
