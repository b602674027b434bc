// The ttrpc frame codec: header layout, incremental decoding, limits, and the envelope
// messages' wire bytes.
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "rpc/ttrpc_codec.h"
#include "ttrpc.pb.h"

namespace tt = kata::ttrpc;

namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

std::vector<tt::Frame> Drain(tt::FrameDecoder& d) {
  std::vector<tt::Frame> out;
  while (auto f = d.Next()) out.push_back(std::move(*f));
  return out;
}

}  // namespace

TEST_CASE("ttrpc header is 10 bytes, big-endian") {
  char h[tt::kHeaderSize];
  tt::EncodeHeader({0x01020304, 0x0a0b0c0d, 2, 0x80}, h);
  CHECK(std::string(h, sizeof h) == Bytes({1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 2, 0x80}));
  tt::FrameHeader back = tt::DecodeHeader(h);
  CHECK(back.length == 0x01020304);
  CHECK(back.stream_id == 0x0a0b0c0d);
  CHECK(back.type == 2);
  CHECK(back.flags == 0x80);

  std::string f = tt::EncodeFrame(7, tt::kRequest, "abc");
  CHECK(f == Bytes({0, 0, 0, 3, 0, 0, 0, 7, 1, 0}) + "abc");
}

TEST_CASE("ttrpc decoder: frames split at every byte come out whole") {
  std::string wire = tt::EncodeFrame(1, tt::kRequest, "hello") +
                     tt::EncodeFrame(3, tt::kRequest, "") +
                     tt::EncodeFrame(5, tt::kData, std::string(1000, 'x'));
  tt::FrameDecoder one_by_one;
  std::vector<tt::Frame> got;
  for (char c : wire) {
    one_by_one.Feed(std::string_view(&c, 1));
    for (auto& f : Drain(one_by_one)) got.push_back(std::move(f));
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0].header.stream_id == 1);
  CHECK(got[0].payload == "hello");
  CHECK(got[1].header.stream_id == 3);
  CHECK(got[1].payload.empty());
  CHECK(got[2].header.type == tt::kData);
  CHECK(got[2].payload == std::string(1000, 'x'));
  CHECK(one_by_one.idle());

  tt::FrameDecoder all_at_once;
  all_at_once.Feed(wire);
  CHECK(Drain(all_at_once).size() == 3);
  CHECK(all_at_once.idle());
}

TEST_CASE("ttrpc decoder: zero-length frame") {
  tt::FrameDecoder d;
  d.Feed(Bytes({0, 0, 0, 0, 0, 0, 0, 9, 1, 0}));
  auto f = d.Next();
  REQUIRE(f);
  CHECK(f->header.length == 0);
  CHECK(f->header.stream_id == 9);
  CHECK(f->payload.empty());
  CHECK_FALSE(f->oversized);
  CHECK(d.idle());
  // An empty payload is a valid (all-default) ttrpc.Request: service and method empty.
  auto req = tt::ParseRequest(f->payload);
  REQUIRE(req.ok());
  CHECK(tt::FullMethod(*req) == "/");
}

TEST_CASE("ttrpc decoder: truncated frames are not delivered and leave it non-idle") {
  std::string frame = tt::EncodeFrame(1, tt::kRequest, "0123456789");
  SECTION("inside the header") {
    tt::FrameDecoder d;
    d.Feed(frame.substr(0, 4));
    CHECK_FALSE(d.Next());
    CHECK_FALSE(d.idle());
    CHECK(d.partial_bytes() == 4);
  }
  SECTION("inside the payload") {
    tt::FrameDecoder d;
    d.Feed(frame.substr(0, frame.size() - 1));
    CHECK_FALSE(d.Next());
    CHECK_FALSE(d.idle());
    CHECK(d.partial_bytes() == frame.size() - 1);
    d.Feed(frame.substr(frame.size() - 1));
    auto f = d.Next();
    REQUIRE(f);
    CHECK(f->payload == "0123456789");
    CHECK(d.idle());
  }
}

TEST_CASE("ttrpc decoder: oversized payloads are skipped, reported, and the stream goes on") {
  SECTION("exactly the limit is accepted") {
    tt::FrameDecoder d;
    d.Feed(tt::EncodeFrame(1, tt::kRequest, std::string(tt::kMaxMessageSize, 'a')));
    auto f = d.Next();
    REQUIRE(f);
    CHECK_FALSE(f->oversized);
    CHECK(f->payload.size() == tt::kMaxMessageSize);
  }
  SECTION("one byte over is skipped without being buffered") {
    tt::FrameDecoder d;
    const uint32_t len = tt::kMaxMessageSize + 1;
    char h[tt::kHeaderSize];
    tt::EncodeHeader({len, 5, tt::kRequest, 0}, h);
    d.Feed(std::string_view(h, sizeof h));
    std::string chunk(64 * 1024, 'z');
    uint32_t sent = 0;
    while (sent + chunk.size() < len) {
      d.Feed(chunk);
      sent += static_cast<uint32_t>(chunk.size());
      CHECK_FALSE(d.Next());
    }
    CHECK(d.partial_bytes() == tt::kHeaderSize + sent);
    d.Feed(std::string(len - sent, 'z') + tt::EncodeFrame(7, tt::kRequest, "next"));
    auto f = d.Next();
    REQUIRE(f);
    CHECK(f->oversized);
    CHECK(f->header.stream_id == 5);
    CHECK(f->header.length == len);
    CHECK(f->payload.empty());
    auto g = d.Next();
    REQUIRE(g);
    CHECK_FALSE(g->oversized);
    CHECK(g->header.stream_id == 7);
    CHECK(g->payload == "next");
    CHECK(d.idle());
  }
  SECTION("a 4 GiB length followed by end of input is a truncated frame") {
    tt::FrameDecoder d;
    d.Feed(Bytes({0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0}) + "abc");
    CHECK_FALSE(d.Next());
    CHECK_FALSE(d.idle());
    CHECK(d.partial_bytes() == tt::kHeaderSize + 3);
  }
  SECTION("a smaller limit") {
    tt::FrameDecoder d(4);
    d.Feed(tt::EncodeFrame(1, tt::kRequest, "12345") + tt::EncodeFrame(3, tt::kRequest, "1234"));
    auto f = d.Next();
    REQUIRE(f);
    CHECK(f->oversized);
    auto g = d.Next();
    REQUIRE(g);
    CHECK(g->payload == "1234");
  }
}

TEST_CASE("ttrpc decoder: garbage never crashes and every byte is accounted for") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; round++) {
    // Small limits keep the random lengths mostly in range, so frames do complete.
    tt::FrameDecoder d(1 + rng() % 512);
    std::string junk(rng() % 4096, '\0');
    for (char& c : junk) {
      // Mostly zero high bytes so random lengths stay small enough to finish.
      c = static_cast<char>(rng() % 3 == 0 ? rng() : 0);
    }
    size_t pos = 0, frames_bytes = 0;
    while (pos < junk.size()) {
      size_t n = std::min<size_t>(junk.size() - pos, 1 + rng() % 97);
      d.Feed(std::string_view(junk).substr(pos, n));
      pos += n;
      for (auto& f : Drain(d)) {
        frames_bytes += tt::kHeaderSize + f.header.length;
        if (!f.oversized) {
          CHECK(f.payload.size() == f.header.length);
          // Garbage payloads either parse as some Request or are rejected cleanly.
          auto req = tt::ParseRequest(f.payload);
          if (!req.ok()) CHECK(req.status().code() == absl::StatusCode::kInvalidArgument);
        }
      }
    }
    CHECK(frames_bytes + d.partial_bytes() == junk.size());
  }
}

TEST_CASE("ttrpc envelope: request and response wire bytes") {
  // Request{service="s", method="m", payload="p", timeout_nano=1}: fields 1, 2, 3, 4.
  std::string f = tt::EncodeRequestFrame(3, "s/m", "p", 1);
  tt::FrameHeader h = tt::DecodeHeader(f.data());
  CHECK(h.stream_id == 3);
  CHECK(h.type == tt::kRequest);
  CHECK(f.substr(tt::kHeaderSize) == Bytes({0x0a, 1, 's', 0x12, 1, 'm', 0x1a, 1, 'p', 0x20, 1}));
  auto req = tt::ParseRequest(f.substr(tt::kHeaderSize));
  REQUIRE(req.ok());
  CHECK(tt::FullMethod(*req) == "s/m");
  CHECK(req->timeout_nano() == 1);

  // An error: Response{status{code=5, message="x"}}; no payload.
  std::string r = tt::EncodeResponseFrame(9, absl::NotFoundError("x"), "ignored");
  CHECK(r.substr(tt::kHeaderSize) == Bytes({0x0a, 5, 0x08, 5, 0x12, 1, 'x'}));
  std::string payload = "untouched";
  kata::Status st = tt::ParseResponse(r.substr(tt::kHeaderSize), &payload);
  CHECK(st.code() == absl::StatusCode::kNotFound);
  CHECK(st.message() == "x");
  CHECK(payload == "untouched");

  // Success: an empty (code 0) status, then the payload in field 2.
  std::string ok = tt::EncodeResponseFrame(11, absl::OkStatus(), "data");
  CHECK(ok.substr(tt::kHeaderSize) == Bytes({0x0a, 0, 0x12, 4, 'd', 'a', 't', 'a'}));
  CHECK(tt::ParseResponse(ok.substr(tt::kHeaderSize), &payload).ok());
  CHECK(payload == "data");

  // A response with no status field at all (allowed by the Go client) is a success too.
  CHECK(tt::ParseResponse(Bytes({0x12, 1, 'z'}), &payload).ok());
  CHECK(payload == "z");
  CHECK(tt::ParseResponse("\xff\xff", &payload).code() == absl::StatusCode::kDataLoss);
}

TEST_CASE("ttrpc envelope: a response over the limit becomes RESOURCE_EXHAUSTED") {
  std::string r =
      tt::EncodeResponseFrame(1, absl::OkStatus(), std::string(tt::kMaxMessageSize, 'x'));
  CHECK(r.size() < 1024);
  std::string payload;
  kata::Status st = tt::ParseResponse(r.substr(tt::kHeaderSize), &payload);
  CHECK(st.code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("ttrpc envelope: a response in parts is protobuf's bytes, the payload not copied") {
  // Sizes around each varint length boundary, up to a frame just under the limit.
  const size_t sizes[] = {0,     1,     127,     128,     16383,
                          16384, 65536, 2097151, 2097152, tt::kMaxMessageSize - 16};
  for (size_t n : sizes) {
    CAPTURE(n);
    std::string payload(n, '\0');
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 131 + 7);
    tt::ResponseParts parts = tt::EncodeResponseParts(42, absl::OkStatus(), payload);
    CHECK(parts.payload.data() == payload.data());
    CHECK(parts.payload.size() == n);
    CHECK(parts.head.size() <= tt::kHeaderSize + 2 + 11);

    ::ttrpc::Response ref;
    ref.mutable_status()->set_code(0);
    ref.set_payload(payload);
    std::string frame = parts.head + std::string(parts.payload);
    CHECK(frame.substr(tt::kHeaderSize) == ref.SerializeAsString());
    tt::FrameHeader h = tt::DecodeHeader(frame.data());
    CHECK(h.length == frame.size() - tt::kHeaderSize);
    CHECK(h.stream_id == 42);
    CHECK(h.type == tt::kResponse);
    CHECK(frame == tt::EncodeResponseFrame(42, absl::OkStatus(), payload));
  }

  // An error is all in head, whatever payload was given.
  tt::ResponseParts err = tt::EncodeResponseParts(3, absl::NotFoundError("gone"), "ignored");
  CHECK(err.payload.empty());
  std::string payload;
  kata::Status st = tt::ParseResponse(err.head.substr(tt::kHeaderSize), &payload);
  CHECK(st.code() == absl::StatusCode::kNotFound);
  CHECK(st.message() == "gone");

  // Over the limit by one byte: RESOURCE_EXHAUSTED naming the size, all in head.
  std::string big(tt::kMaxMessageSize, 'y');
  tt::ResponseParts over = tt::EncodeResponseParts(5, absl::OkStatus(), big);
  CHECK(over.payload.empty());
  st = tt::ParseResponse(over.head.substr(tt::kHeaderSize), &payload);
  CHECK(st.code() == absl::StatusCode::kResourceExhausted);
  CHECK(st.message().find("exceeds the maximum message size") != std::string::npos);
}
