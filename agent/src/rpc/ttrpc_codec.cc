#include "rpc/ttrpc_codec.h"

#include <algorithm>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "ttrpc.pb.h"
#include "util/strcat.h"

namespace kata::ttrpc {
namespace {

void PutU32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

}  // namespace

void EncodeHeader(const FrameHeader& h, char out[kHeaderSize]) {
  PutU32(out, h.length);
  PutU32(out + 4, h.stream_id);
  out[8] = static_cast<char>(h.type);
  out[9] = static_cast<char>(h.flags);
}

FrameHeader DecodeHeader(const char in[kHeaderSize]) {
  FrameHeader h;
  h.length = GetU32(in);
  h.stream_id = GetU32(in + 4);
  h.type = static_cast<uint8_t>(in[8]);
  h.flags = static_cast<uint8_t>(in[9]);
  return h;
}

std::string EncodeFrame(uint32_t stream_id, uint8_t type, std::string_view payload, uint8_t flags) {
  std::string out(kHeaderSize + payload.size(), '\0');
  EncodeHeader(FrameHeader{static_cast<uint32_t>(payload.size()), stream_id, type, flags},
               out.data());
  std::copy(payload.begin(), payload.end(), out.begin() + kHeaderSize);
  return out;
}

size_t FrameDecoder::partial_bytes() const {
  if (!in_body_) return header_fill_;
  uint64_t got = skip_left_ > 0 ? current_.length - skip_left_ : body_.size();
  return kHeaderSize + static_cast<size_t>(got);
}

void FrameDecoder::Feed(std::string_view in) {
  while (!in.empty()) {
    if (!in_body_) {
      size_t n = std::min(kHeaderSize - header_fill_, in.size());
      std::copy(in.begin(), in.begin() + static_cast<ptrdiff_t>(n), header_buf_ + header_fill_);
      header_fill_ += n;
      in.remove_prefix(n);
      if (header_fill_ < kHeaderSize) return;
      header_fill_ = 0;
      current_ = DecodeHeader(header_buf_);
      if (current_.length > max_payload_) {
        skip_left_ = current_.length;
        in_body_ = true;
        continue;
      }
      if (current_.length == 0) {
        ready_.push_back(Frame{current_, std::string(), false});
        continue;
      }
      in_body_ = true;
      // Bounded by max_payload_, so a lying header cannot make us reserve much.
      body_.reserve(current_.length);
      continue;
    }
    if (skip_left_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(skip_left_, in.size()));
      skip_left_ -= n;
      in.remove_prefix(n);
      if (skip_left_ == 0) {
        in_body_ = false;
        ready_.push_back(Frame{current_, std::string(), true});
      }
      continue;
    }
    size_t n = std::min<size_t>(current_.length - body_.size(), in.size());
    body_.append(in.data(), n);
    in.remove_prefix(n);
    if (body_.size() == current_.length) {
      in_body_ = false;
      ready_.push_back(Frame{current_, std::move(body_), false});
      body_ = std::string();
    }
  }
}

std::optional<Frame> FrameDecoder::Next() {
  if (ready_.empty()) return std::nullopt;
  Frame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

std::string FullMethod(const ::ttrpc::Request& req) {
  return StrCat(req.service(), "/", req.method());
}

StatusOr<::ttrpc::Request> ParseRequest(std::string_view payload) {
  ::ttrpc::Request req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError("unmarshal request error: not a valid ttrpc.Request");
  }
  return req;
}

ResponseParts EncodeResponseParts(uint32_t stream_id, const Status& st, std::string_view payload) {
  ::ttrpc::Response resp;
  resp.mutable_status()->set_code(static_cast<int32_t>(st.code()));
  if (!st.ok()) {
    resp.mutable_status()->set_message(std::string(st.message()));
    return {EncodeFrame(stream_id, kResponse, resp.SerializeAsString()), {}};
  }
  // Response is {Status status = 1; bytes payload = 2}. Fields are serialized in number
  // order, so the body is the serialized status, then the payload's tag, its length as a
  // varint and its bytes; an empty payload is omitted, as proto3 does.
  using google::protobuf::internal::WireFormatLite;
  using Out = google::protobuf::io::CodedOutputStream;
  const std::string status = resp.SerializeAsString();
  uint8_t prefix[1 + 10];
  size_t prefix_len = 0;
  if (!payload.empty()) {
    uint8_t* end =
        Out::WriteTagToArray(WireFormatLite::MakeTag(::ttrpc::Response::kPayloadFieldNumber,
                                                     WireFormatLite::WIRETYPE_LENGTH_DELIMITED),
                             prefix);
    end = Out::WriteVarint64ToArray(payload.size(), end);
    prefix_len = static_cast<size_t>(end - prefix);
  }
  const uint64_t body = status.size() + prefix_len + payload.size();
  if (body > kMaxMessageSize) {
    return EncodeResponseParts(
        stream_id,
        absl::ResourceExhaustedError(StrCat(
            "response of ", body, " bytes exceeds the maximum message size of ", kMaxMessageSize)),
        {});
  }
  ResponseParts parts;
  parts.head.resize(kHeaderSize);
  EncodeHeader(FrameHeader{static_cast<uint32_t>(body), stream_id, kResponse, 0},
               parts.head.data());
  parts.head.append(status);
  parts.head.append(reinterpret_cast<const char*>(prefix), prefix_len);
  parts.payload = payload;
  return parts;
}

std::string EncodeResponseFrame(uint32_t stream_id, const Status& st, std::string_view payload) {
  ResponseParts parts = EncodeResponseParts(stream_id, st, payload);
  parts.head.append(parts.payload);
  return std::move(parts.head);
}

std::string EncodeRequestFrame(uint32_t stream_id, std::string_view full_method,
                               std::string_view payload, int64_t timeout_nano) {
  ::ttrpc::Request req;
  size_t slash = full_method.rfind('/');
  if (slash == std::string_view::npos) {
    req.set_method(std::string(full_method));
  } else {
    req.set_service(std::string(full_method.substr(0, slash)));
    req.set_method(std::string(full_method.substr(slash + 1)));
  }
  req.set_payload(std::string(payload));
  req.set_timeout_nano(timeout_nano);
  return EncodeFrame(stream_id, kRequest, req.SerializeAsString());
}

Status ParseResponse(std::string_view frame_payload, std::string* payload) {
  ::ttrpc::Response resp;
  if (!resp.ParseFromArray(frame_payload.data(), static_cast<int>(frame_payload.size()))) {
    return absl::DataLossError("the response is not a valid ttrpc.Response");
  }
  if (resp.has_status() && resp.status().code() != 0) {
    int code = resp.status().code();
    if (code < 0 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
    return Status(static_cast<absl::StatusCode>(code), resp.status().message());
  }
  *payload = std::move(*resp.mutable_payload());
  return absl::OkStatus();
}

}  // namespace kata::ttrpc
