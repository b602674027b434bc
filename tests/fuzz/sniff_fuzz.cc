// Protocol sniffing on every prefix of the first bytes of a connection: a decision, once
// made, never changes as more bytes arrive, and "need more" is only ever a prefix of the
// HTTP/2 preface.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "rpc/sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  kata::Protocol decided = kata::Protocol::kNeedMore;
  for (size_t n = 0; n <= all.size(); ++n) {
    kata::Protocol p = kata::SniffProtocol(all.substr(0, n));
    if (decided != kata::Protocol::kNeedMore) {
      FUZZ_CHECK(p == decided);
      continue;
    }
    if (p == kata::Protocol::kNeedMore) {
      FUZZ_CHECK(n < kata::kHttp2Preface.size());
      FUZZ_CHECK(kata::kHttp2Preface.substr(0, n) == all.substr(0, n));
    }
    if (p == kata::Protocol::kTtrpc) FUZZ_CHECK(n > 0 && all[0] == '\0');
    if (p == kata::Protocol::kGrpc) FUZZ_CHECK(all.substr(0, n) == kata::kHttp2Preface);
    decided = p;
  }
  return 0;
}
