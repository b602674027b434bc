// The network requests' conversions (network/spec, network/ip): UpdateInterface,
// UpdateRoutes and AddARPNeighbors bodies. The first byte picks the request; the rest is
// the serialized request. Accepted values print back to what parses to the same value.
#include <cstdint>

#include "agent.pb.h"
#include "fuzz_util.h"
#include "network/ip.h"
#include "network/spec.h"

namespace net = kata::net;

namespace {

void RoundTrip(const net::IpPrefix& p) {
  FUZZ_CHECK(p.len >= 0 && p.len <= p.addr.max_prefix());
  kata::StatusOr<net::IpPrefix> back = net::ParseCidr(net::FormatCidr(p), "x");
  FUZZ_CHECK(back.ok() && *back == p);
}

void RoundTrip(const net::IpAddress& a) {
  kata::StatusOr<net::IpAddress> back = net::ParseIp(net::FormatIp(a), "x");
  FUZZ_CHECK(back.ok() && *back == a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 3;
  ++data;
  --size;
  if (which == 0) {
    grpc::UpdateInterfaceRequest req;
    if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
    kata::StatusOr<net::InterfaceConfig> c = net::InterfaceFromProto(req.interface());
    if (!c.ok()) return 0;
    for (const net::IpPrefix& p : c->addresses) RoundTrip(p);
    net::LinkInfo li;
    li.name = c->name;
    li.mtu = c->mtu;
    li.addresses = c->addresses;
    types::Interface out;
    net::LinkToProto(li, &out);
  } else if (which == 1) {
    grpc::UpdateRoutesRequest req;
    if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
    std::vector<net::RouteConfig> routes;
    for (const types::Route& r : req.routes().routes()) {
      kata::StatusOr<net::RouteConfig> c = net::RouteFromProto(r);
      if (!c.ok()) continue;
      if (c->dest) RoundTrip(*c->dest);
      if (c->gateway) RoundTrip(*c->gateway);
      if (c->source) RoundTrip(*c->source);
      routes.push_back(*c);
    }
    size_t n = routes.size();
    net::OrderRoutes(&routes);
    FUZZ_CHECK(routes.size() == n);
    for (size_t i = 1; i < routes.size(); ++i) {
      // The default route(s) come last.
      FUZZ_CHECK(!routes[i - 1].is_default() || routes[i].is_default());
    }
    for (const net::RouteConfig& r : routes) {
      net::RouteInfo ri;
      ri.route = r;
      types::Route out;
      net::RouteToProto(ri, &out);
    }
  } else {
    grpc::AddARPNeighborsRequest req;
    if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
    for (const types::ARPNeighbor& n : req.neighbors().arpneighbors()) {
      kata::StatusOr<net::NeighbourConfig> c = net::NeighbourFromProto(n);
      if (c.ok()) RoundTrip(c->ip);
    }
  }
  return 0;
}
