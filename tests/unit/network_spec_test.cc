#include <linux/neighbour.h>
#include <catch2/catch.hpp>

#include "network/spec.h"

using namespace kata::net;

namespace {

types::Route R(const std::string& dest, const std::string& gw, const std::string& dev = "eth0") {
  types::Route r;
  r.set_dest(dest);
  r.set_gateway(gw);
  r.set_device(dev);
  return r;
}

std::string Describe(const RouteConfig& r) {
  std::string s = r.is_default() ? "default" : FormatCidr(*r.dest);
  if (r.gateway) s += " via " + FormatIp(*r.gateway);
  return s;
}

}  // namespace

TEST_CASE("an interface request converts, addresses of both families") {
  types::Interface in;
  in.set_hwaddr("52:54:00:12:34:56");
  in.set_name("eth0");
  in.set_mtu(1400);
  auto* a = in.add_ipaddresses();
  a->set_address("10.0.2.15");
  a->set_mask("24");
  auto* b = in.add_ipaddresses();
  b->set_family(types::v6);
  b->set_address("fd00::15");
  b->set_mask("64");
  auto* dup = in.add_ipaddresses();
  *dup = *a;
  auto c = InterfaceFromProto(in);
  REQUIRE(c.ok());
  CHECK(c->hw_addr.has_value());
  CHECK(c->name == "eth0");
  CHECK(c->mtu == 1400);
  REQUIRE(c->addresses.size() == 2);  // the duplicate folded
  CHECK(FormatCidr(c->addresses[0]) == "10.0.2.15/24");
  CHECK(FormatCidr(c->addresses[1]) == "fd00::15/64");
}

TEST_CASE("bad interface requests name the bad field") {
  auto code_and_msg = [](const types::Interface& in) {
    auto c = InterfaceFromProto(in);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(c.status().message());
  };
  types::Interface in;
  CHECK(code_and_msg(in).find("neither hwAddr nor name") != std::string::npos);
  in.set_hwaddr("52:54:00:12:34");
  CHECK(code_and_msg(in).find("hwAddr '52:54:00:12:34'") != std::string::npos);
  in.set_hwaddr("52:54:00:12:34:56");
  auto* a = in.add_ipaddresses();
  a->set_address("10.0.2.300");
  a->set_mask("24");
  CHECK(code_and_msg(in).find("'10.0.2.300'") != std::string::npos);
  a->set_address("10.0.2.15");
  a->set_mask("40");
  CHECK(code_and_msg(in).find("mask of address 10.0.2.15 '40'") != std::string::npos);
  a->set_mask("24");
  in.set_name("a-name-that-is-too-long");
  CHECK(code_and_msg(in).find("not a valid link name") != std::string::npos);
  in.set_name("eth0");
  a->set_family(types::v6);
  CHECK(code_and_msg(in).find("family v6") != std::string::npos);
  a->set_family(types::v4);
  in.set_devicepath("02/zz");
  CHECK(code_and_msg(in).find("02/zz") != std::string::npos);
  in.set_devicepath("02/00");
  auto ok = InterfaceFromProto(in);
  REQUIRE(ok.ok());
  REQUIRE(ok->device_path.has_value());
  CHECK(ok->device_path->ToString() == "02/00");
}

TEST_CASE("routes convert: default forms, families, preferred source") {
  for (const char* d : {"", "default", "0.0.0.0/0"}) {
    auto r = RouteFromProto(R(d, "10.0.2.2"));
    REQUIRE(r.ok());
    CHECK(r->is_default());
    CHECK(r->family == AF_INET);
  }
  auto v6 = RouteFromProto(R("::/0", "fd00::1"));
  REQUIRE(v6.ok());
  CHECK(v6->family == AF_INET6);
  // The family comes from the addresses even when the field was left at v4 (its zero).
  CHECK(RouteFromProto(R("fd00:1::/64", ""))->family == AF_INET6);
  types::Route bare = R("", "");
  bare.set_family(types::v6);
  CHECK(RouteFromProto(bare)->family == AF_INET6);

  types::Route s = R("10.0.2.0/24", "");
  s.set_source("10.0.2.15");
  s.set_scope(253);
  s.set_mtu(1400);
  auto r = RouteFromProto(s);
  REQUIRE(r.ok());
  CHECK(FormatIp(*r->source) == "10.0.2.15");
  CHECK(r->scope == 253);
  CHECK(r->mtu == 1400);
  s.set_source("10.0.2.15/32");
  CHECK(RouteFromProto(s).ok());
}

TEST_CASE("bad routes are INVALID_ARGUMENT naming what is wrong") {
  auto msg = [](const types::Route& in) {
    auto r = RouteFromProto(in);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  CHECK(msg(R("10.0.2.0/99", "")).find("route dest '10.0.2.0/99'") != std::string::npos);
  CHECK(msg(R("10.0.2.15/24", "")).find("host bits") != std::string::npos);
  CHECK(msg(R("10.0.2.0/24", "10.0.2.x")).find("route gateway '10.0.2.x'") != std::string::npos);
  CHECK(msg(R("10.0.2.0/24", "fd00::1")).find("another address family") != std::string::npos);
  CHECK(msg(R("10.0.2.0/24", "", "")).find("no device") != std::string::npos);
  types::Route s = R("10.0.2.0/24", "");
  s.set_source("10.0.2.0/24");
  CHECK(msg(s).find("route source") != std::string::npos);
  s.set_source("");
  s.set_scope(300);
  CHECK(msg(s).find("scope 300") != std::string::npos);
}

TEST_CASE("route order: link routes, then gateway routes, the default last; stable") {
  std::vector<RouteConfig> v;
  for (auto [d, g] : std::vector<std::pair<const char*, const char*>>{
           {"", "10.0.2.2"},
           {"192.168.0.0/16", "10.0.2.3"},
           {"10.0.2.0/24", ""},
           {"::/0", "fd00::1"},
           {"172.16.0.0/12", "10.0.2.4"},
           {"fd00::/64", ""},
           {"10.0.3.0/24", ""},
       }) {
    auto r = RouteFromProto(R(d, g));
    REQUIRE(r.ok());
    v.push_back(*r);
  }
  OrderRoutes(&v);
  std::vector<std::string> got;
  for (const auto& r : v) got.push_back(Describe(r));
  CHECK(got == std::vector<std::string>{"10.0.2.0/24", "fd00::/64", "10.0.3.0/24",
                                        "192.168.0.0/16 via 10.0.2.3", "172.16.0.0/12 via 10.0.2.4",
                                        "default via 10.0.2.2", "default via fd00::1"});
}

TEST_CASE("ARP neighbours: permanent by default, lladdr checked") {
  types::ARPNeighbor n;
  n.mutable_toipaddress()->set_address("10.0.2.9");
  n.set_device("eth0");
  n.set_lladdr("52:54:00:00:00:09");
  auto c = NeighbourFromProto(n);
  REQUIRE(c.ok());
  CHECK(c->state == NUD_PERMANENT);
  n.set_state(NUD_REACHABLE);
  CHECK(NeighbourFromProto(n)->state == NUD_REACHABLE);
  n.set_lladdr("zz");
  CHECK(NeighbourFromProto(n).status().code() == absl::StatusCode::kInvalidArgument);
  types::ARPNeighbor empty;
  empty.set_device("eth0");
  CHECK(std::string(NeighbourFromProto(empty).status().message()).find("toIPAddress") !=
        std::string::npos);
}

TEST_CASE("what the kernel has converts back to the API's types") {
  LinkInfo l;
  l.name = "eth0";
  l.hw_addr = "52:54:00:12:34:56";
  l.mtu = 1500;
  l.flags = 0x1043;
  l.type = "veth";
  l.addresses = {*ParseCidr("10.0.2.15/24", "a"), *ParseCidr("fd00::15/64", "a")};
  types::Interface out;
  LinkToProto(l, &out);
  CHECK(out.name() == "eth0");
  CHECK(out.hwaddr() == "52:54:00:12:34:56");
  CHECK(out.mtu() == 1500);
  CHECK(out.raw_flags() == 0x1043);
  REQUIRE(out.ipaddresses_size() == 2);
  CHECK(out.ipaddresses(0).address() == "10.0.2.15");
  CHECK(out.ipaddresses(0).mask() == "24");
  CHECK(out.ipaddresses(1).family() == types::v6);

  RouteInfo ri;
  ri.route = *RouteFromProto(R("", "10.0.2.2"));
  types::Route rout;
  RouteToProto(ri, &rout);
  CHECK(rout.dest().empty());
  CHECK(rout.gateway() == "10.0.2.2");
  CHECK(rout.device() == "eth0");
  // What ListRoutes returns is accepted back by UpdateRoutes.
  CHECK(RouteFromProto(rout).ok());
}
