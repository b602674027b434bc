// The ttrpc frame decoder on arbitrary bytes fed in arbitrary pieces, and the request and
// response payload parsers on every frame it yields.
//
// Input: one byte choosing the decoder's payload limit, then the stream; each piece's
// length comes from the stream position (so the mutator controls the split through the
// bytes themselves). Invariants: frames come out in order and, re-encoded, equal the input
// they were decoded from (an oversized frame's payload is skipped, not kept); what is left
// is exactly partial_bytes(); nothing is buffered beyond the limit.
#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "rpc/ttrpc_codec.h"
#include "ttrpc.pb.h"

using kata::fuzz::Cursor;
namespace tt = kata::ttrpc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Cursor in(data, size);
  // Small limits make the oversized path reachable with small inputs; 0xff: the real one.
  uint8_t lim = in.Byte();
  const uint32_t max_payload = lim == 0xff ? tt::kMaxMessageSize : lim;
  const std::string_view stream = in.Rest();

  tt::FrameDecoder dec(max_payload);
  std::string rebuilt;   // the decoded frames, re-encoded (oversized ones without payload)
  std::string expected;  // the input with each oversized frame's payload cut out
  size_t consumed = 0, pos = 0;
  while (pos < stream.size()) {
    size_t piece = 1 + (static_cast<uint8_t>(stream[pos]) % 17);
    piece = std::min(piece, stream.size() - pos);
    dec.Feed(stream.substr(pos, piece));
    pos += piece;
    while (std::optional<tt::Frame> f = dec.Next()) {
      FUZZ_CHECK(consumed + tt::kHeaderSize <= pos);
      tt::FrameHeader h = tt::DecodeHeader(stream.data() + consumed);
      FUZZ_CHECK(h.length == f->header.length && h.stream_id == f->header.stream_id &&
                 h.type == f->header.type && h.flags == f->header.flags);
      if (f->oversized) {
        FUZZ_CHECK(f->header.length > max_payload);
        FUZZ_CHECK(f->payload.empty());
        expected.append(stream.substr(consumed, tt::kHeaderSize));
      } else {
        FUZZ_CHECK(f->header.length <= max_payload);
        FUZZ_CHECK(f->payload.size() == f->header.length);
        expected.append(stream.substr(consumed, tt::kHeaderSize + f->header.length));
        // The payload parsers must cope with anything a client sends.
        kata::StatusOr<::ttrpc::Request> req = tt::ParseRequest(f->payload);
        if (req.ok()) (void)tt::FullMethod(*req);
        std::string body;
        (void)tt::ParseResponse(f->payload, &body);
      }
      char hdr[tt::kHeaderSize];
      tt::EncodeHeader(f->header, hdr);
      rebuilt.append(hdr, tt::kHeaderSize);
      rebuilt.append(f->payload);
      consumed += tt::kHeaderSize + f->header.length;
    }
    FUZZ_CHECK(consumed <= pos);
    FUZZ_CHECK(dec.partial_bytes() == pos - consumed);
    FUZZ_CHECK(dec.idle() == (pos == consumed));
  }
  FUZZ_CHECK(rebuilt == expected);

  // Encoding back: a response frame decodes to what was encoded.
  if (!stream.empty()) {
    uint32_t sid = static_cast<uint32_t>(stream.size()) | 1;
    std::string payload(stream.substr(0, std::min<size_t>(stream.size(), 64)));
    std::string frame = tt::EncodeResponseFrame(sid, kata::Status(), payload);
    tt::FrameDecoder d2;
    d2.Feed(frame);
    std::optional<tt::Frame> f = d2.Next();
    FUZZ_CHECK(f && f->header.stream_id == sid && f->header.type == tt::kResponse);
    std::string got;
    FUZZ_CHECK(tt::ParseResponse(f->payload, &got).ok() && got == payload);
  }
  return 0;
}
