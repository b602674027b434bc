#include <catch2/catch.hpp>

#include "connection.h"
#include "hybrid.h"
#include "iov.h"
#include "packet.h"

using namespace kata::vsock;

TEST_CASE("vsock header: encode/decode round trip and wire layout", "[vsock]") {
  Header h;
  h.src_cid = 2;
  h.dst_cid = 0x1122334455667788ull;
  h.src_port = 1u << 30;
  h.dst_port = 1024;
  h.len = 4096;
  h.type = kTypeStream;
  h.op = kOpRw;
  h.flags = kShutdownSend;
  h.buf_alloc = 262144;
  h.fwd_cnt = 0xdeadbeef;
  uint8_t b[kHeaderSize];
  EncodeHeader(h, b);
  CHECK(DecodeHeader(b) == h);
  // Little-endian, packed, at the offsets of struct virtio_vsock_hdr.
  CHECK(b[0] == 2);
  CHECK(b[8] == 0x88);
  CHECK(b[15] == 0x11);
  CHECK(b[16 + 3] == 0x40);  // src_port 0x40000000
  CHECK(b[20] == 0x00);
  CHECK(b[21] == 0x04);           // dst_port 1024
  CHECK(b[24 + 1] == 0x10);       // len 4096
  CHECK(b[28] == 1);              // type
  CHECK(b[30] == kOpRw);          // op
  CHECK(b[32] == kShutdownSend);  // flags
  CHECK(b[36 + 2] == 0x04);       // buf_alloc 0x40000
  CHECK(b[40] == 0xef);
  CHECK(b[43] == 0xde);
  CHECK(Describe(h).rfind("RW 2:1073741824 -> ", 0) == 0);
  CHECK(std::string(OpName(kOpCreditRequest)) == "CREDIT_REQUEST");
  CHECK(std::string(OpName(99)) == "UNKNOWN");
}

TEST_CASE("iovec helpers copy across any split", "[vsock]") {
  uint8_t a[3], b[1], c[10];
  std::vector<iovec> iov = {{a, 3}, {b, 1}, {nullptr, 0}, {c, 10}};
  CHECK(IovLength(iov) == 14);
  const char* msg = "abcdefghijklmn";
  CHECK(IovCopyIn(iov, 0, msg, 14) == 14);
  char out[15] = {};
  CHECK(IovCopyOut(iov, 2, out, 5) == 5);
  CHECK(std::string(out) == "cdefg");
  CHECK(IovCopyOut(iov, 12, out, 10) == 2);
  std::vector<iovec> s;
  CHECK(IovSlice(iov, 2, 3, &s) == 3);
  REQUIRE(s.size() == 3);  // "c" | "d" | "e"
  CHECK(s[0].iov_len == 1);
  CHECK(s[1].iov_len == 1);
  CHECK(s[2].iov_len == 1);
  s.clear();
  CHECK(IovSlice(iov, 4, 100, &s) == 10);
  REQUIRE(s.size() == 1);
  CHECK(s[0].iov_base == c);
}

TEST_CASE("credit: how much the guest can take", "[vsock]") {
  Credit c;
  c.OnPeerHeader(65536, 0);
  CHECK(c.PeerFree() == 65536);
  c.OnSent(60000);
  CHECK(c.PeerFree() == 5536);
  c.OnSent(5536);
  CHECK(c.PeerFree() == 0);
  c.OnPeerHeader(65536, 40000);  // the guest application read 40000 bytes
  CHECK(c.PeerFree() == 40000);
  // The guest shrinks its buffer below what is in flight: no credit, not a huge one.
  c.OnPeerHeader(1000, 40000);
  CHECK(c.PeerFree() == 0);

  SECTION("counters wrap around 2^32") {
    Credit w;
    w.tx_cnt = 0xfffffff0u;
    w.OnPeerHeader(4096, 0xffffff00u);  // 0xf0 bytes in flight
    CHECK(w.PeerFree() == 4096 - 0xf0);
    w.OnSent(0x20);  // tx_cnt wraps to 0x10
    CHECK(w.tx_cnt == 0x10);
    CHECK(w.PeerFree() == 4096 - 0x110);
  }
}

TEST_CASE("credit: what the guest may send us and when it hears about freed space", "[vsock]") {
  Credit c;
  c.buf_alloc = 1000;
  CHECK(c.CanReceive(1000));
  CHECK_FALSE(c.CanReceive(1001));
  c.OnReceived(600);
  CHECK(c.Buffered() == 600);
  CHECK(c.CanReceive(400));
  CHECK_FALSE(c.CanReceive(401));
  CHECK_FALSE(c.ShouldUpdatePeer());  // nothing forwarded yet: nothing new to tell
  c.OnForwarded(100);
  // The guest believes 400 free (< half): tell it.
  CHECK(c.ShouldUpdatePeer());
  c.OnAdvertised();
  CHECK(c.last_sent_fwd_cnt == 100);
  CHECK_FALSE(c.ShouldUpdatePeer());
  CHECK(c.CanReceive(500));
  // Plenty of believed space: no update for every little write.
  Credit d;
  d.buf_alloc = 1000;
  d.OnReceived(100);
  d.OnForwarded(100);
  CHECK_FALSE(d.ShouldUpdatePeer());
  d.OnReceived(500);
  d.OnForwarded(500);
  CHECK(d.ShouldUpdatePeer());  // believes 400 free
}

TEST_CASE("byte ring keeps order across wrap-around", "[vsock]") {
  ByteRing r(8);
  CHECK(r.Push("abcde", 5) == 5);
  r.Consume(3);
  CHECK(r.Push("fghijkl", 7) == 6);  // only 6 fit
  CHECK(r.size() == 8);
  std::vector<iovec> f;
  r.Front(&f);
  REQUIRE(f.size() == 2);
  std::string got;
  for (auto& v : f) got.append(static_cast<char*>(v.iov_base), v.iov_len);
  CHECK(got == "defghijk");
  r.Consume(8);
  CHECK(r.empty());
  std::vector<iovec> none;
  r.Front(&none);
  CHECK(none.empty());
  // Push from iovecs with an offset.
  char x[] = "0123", y[] = "4567";
  std::vector<iovec> src = {{x, 4}, {y, 4}};
  CHECK(r.Push(src, 3) == 5);
  f.clear();
  r.Front(&f);
  got.clear();
  for (auto& v : f) got.append(static_cast<char*>(v.iov_base), v.iov_len);
  CHECK(got == "34567");
}

TEST_CASE("hybrid vsock CONNECT line", "[vsock]") {
  uint32_t port = 0;
  size_t len = 0;
  CHECK(ParseConnectLine("CONNECT 1024\n", &port, &len) == ConnectLine::kOk);
  CHECK(port == 1024);
  CHECK(len == 13);
  CHECK(ParseConnectLine("CONNECT 1025\r\nraw bytes", &port, &len) == ConnectLine::kOk);
  CHECK(port == 1025);
  CHECK(len == 14);
  CHECK(ParseConnectLine("CONNECT 4294967295\n", &port, &len) == ConnectLine::kOk);
  CHECK(port == 4294967295u);
  CHECK(ParseConnectLine("CONN", &port, &len) == ConnectLine::kIncomplete);
  CHECK(ParseConnectLine("CONNECT 10", &port, &len) == ConnectLine::kIncomplete);
  CHECK(ParseConnectLine("", &port, &len) == ConnectLine::kIncomplete);
  CHECK(ParseConnectLine("GET / HTTP/1.1\r\n", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("X", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("CONNECT \n", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("CONNECT -1\n", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("CONNECT 4294967296\n", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("CONNECT 12a\n", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("connect 1\n", &port, &len) == ConnectLine::kBad);
  CHECK(ParseConnectLine("CONNECT " + std::string(60, '1'), &port, &len) == ConnectLine::kBad);
}
