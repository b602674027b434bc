#include "rpc/sniff.h"

namespace kata {

Protocol SniffProtocol(std::string_view b) {
  if (b.empty()) return Protocol::kNeedMore;
  if (b[0] == '\0') return Protocol::kTtrpc;
  size_t n = b.size() < kHttp2Preface.size() ? b.size() : kHttp2Preface.size();
  if (b.substr(0, n) != kHttp2Preface.substr(0, n)) return Protocol::kUnknown;
  return n == kHttp2Preface.size() ? Protocol::kGrpc : Protocol::kNeedMore;
}

}  // namespace kata
