#include "rpc/ttrpc_server.h"

#include "util/log.h"

namespace kata {

void TtrpcServer::AddConnection(UniqueFd fd) {
  log::Warn("ttrpc is not served by this build; closing the connection").Kv("fd", fd.get());
}

}  // namespace kata
