// agent-ctl: a host-side client for the agent, for people, tests and benchmarks.
//
//   agent-ctl --addr unix:///run/agent.sock Check
//   agent-ctl --addr hvsock:///tmp/vm/vsock.sock:1024 --proto grpc GetGuestDetails
//   '{"mem_block_size":true}' agent-ctl --addr ... CreateContainer @request.json
//
// Every method of the API can be called: the request is given in the protobuf JSON
// mapping (field names as in the .proto files), the response is printed the same way.
// Errors print the status code and message and exit 1.
#include <getopt.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "agent.pb.h"
#include "console.h"
#include "health.pb.h"
#include "rpc/address.h"
#include "transport.h"

namespace kata::ctl {
namespace {

namespace pb = google::protobuf;

void Usage(FILE* out) {
  fprintf(out,
          "usage: agent-ctl --addr ADDR [--proto ttrpc|grpc] [--timeout SECONDS] [--repeat N] "
          "METHOD [REQUEST]\n"
          "       agent-ctl list\n"
          "       agent-ctl console --addr ADDR       (a shell on the debug console port, 1026)\n"
          "       agent-ctl logs --addr ADDR [--follow] (the agent's log port, 1025)\n"
          "\n"
          "  ADDR     unix:///path | unix://@name | hvsock:///path/to/backend.sock:PORT | "
          "vsock://CID:PORT\n"
          "  METHOD   a method name (Check, Version, CreateContainer, ...) or service/method\n"
          "  REQUEST  the request in protobuf JSON: inline, @file, or - for stdin (default {})\n"
          "  --repeat N  make the call N times on one connection and print the call rate\n");
}

const pb::MethodDescriptor* FindMethod(const std::string& name) {
  // Make sure the generated descriptors are linked in and registered.
  (void)grpc::CheckRequest::descriptor();
  (void)grpc::CreateContainerRequest::descriptor();
  const auto* pool = pb::DescriptorPool::generated_pool();
  for (const char* svc_name : {"grpc.AgentService", "grpc.Health"}) {
    const auto* svc = pool->FindServiceByName(svc_name);
    if (!svc) continue;
    if (auto slash = name.find('/'); slash != std::string::npos) {
      if (name.substr(0, slash) != svc->full_name()) continue;
      if (auto* m = svc->FindMethodByName(name.substr(slash + 1))) return m;
      continue;
    }
    if (auto* m = svc->FindMethodByName(name)) return m;
  }
  return nullptr;
}

void ListMethods() {
  (void)grpc::CheckRequest::descriptor();
  (void)grpc::CreateContainerRequest::descriptor();
  const auto* pool = pb::DescriptorPool::generated_pool();
  for (const char* svc_name : {"grpc.Health", "grpc.AgentService"}) {
    const auto* svc = pool->FindServiceByName(svc_name);
    for (int i = 0; svc && i < svc->method_count(); i++) {
      printf("%s/%s (%s) -> %s\n", svc->full_name().c_str(), svc->method(i)->name().c_str(),
             svc->method(i)->input_type()->full_name().c_str(),
             svc->method(i)->output_type()->full_name().c_str());
    }
  }
}

StatusOr<std::string> ReadRequestText(const std::string& arg) {
  if (arg == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  if (!arg.empty() && arg[0] == '@') {
    std::ifstream f(arg.substr(1));
    if (!f) return absl::NotFoundError("cannot open " + arg.substr(1));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  return arg;
}

int Fail(const Status& st) {
  fprintf(stderr, "agent-ctl: %s: %s\n", absl::StatusCodeToString(st.code()).c_str(),
          std::string(st.message()).c_str());
  return 1;
}

}  // namespace

int Main(int argc, char** argv) {
  std::string addr_s, proto = "ttrpc";
  double timeout_s = 60;
  long repeat = 0;
  static const struct option kOpts[] = {
      {"addr", required_argument, nullptr, 'a'},    {"proto", required_argument, nullptr, 'p'},
      {"timeout", required_argument, nullptr, 't'}, {"repeat", required_argument, nullptr, 'r'},
      {"help", no_argument, nullptr, 'h'},          {nullptr, 0, nullptr, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "+", kOpts, nullptr)) != -1) {
    switch (c) {
      case 'a':
        addr_s = optarg;
        break;
      case 'p':
        proto = optarg;
        break;
      case 't':
        timeout_s = atof(optarg);
        break;
      case 'r':
        repeat = atol(optarg);
        break;
      case 'h':
        Usage(stdout);
        return 0;
      default:
        Usage(stderr);
        return 2;
    }
  }
  if (optind >= argc) {
    Usage(stderr);
    return 2;
  }
  std::string method_name = argv[optind];
  if (method_name == "list") {
    ListMethods();
    return 0;
  }
  if (method_name == "console") return ConsoleMain(addr_s, timeout_s, argc - optind, argv + optind);
  if (method_name == "logs") return LogsMain(addr_s, timeout_s, argc - optind, argv + optind);
  if (proto != "ttrpc" && proto != "grpc") {
    fprintf(stderr, "agent-ctl: --proto must be ttrpc or grpc\n");
    return 2;
  }
  if (addr_s.empty()) addr_s = getenv("KATA_AGENT_ADDR") ? getenv("KATA_AGENT_ADDR") : "";
  if (addr_s.empty()) {
    fprintf(stderr, "agent-ctl: --addr is required\n");
    return 2;
  }
  const pb::MethodDescriptor* method = FindMethod(method_name);
  if (!method) {
    fprintf(stderr, "agent-ctl: unknown method '%s' (agent-ctl list shows them)\n",
            method_name.c_str());
    return 2;
  }
  std::string full = method->service()->full_name() + "/" + method->name();

  StatusOr<std::string> text = ReadRequestText(optind + 1 < argc ? argv[optind + 1] : "{}");
  if (!text.ok()) return Fail(text.status());
  pb::DynamicMessageFactory factory;
  std::unique_ptr<pb::Message> req(factory.GetPrototype(method->input_type())->New());
  if (auto st = pb::util::JsonStringToMessage(*text, req.get()); !st.ok()) {
    fprintf(stderr, "agent-ctl: the request is not a valid %s in JSON: %s\n",
            method->input_type()->full_name().c_str(), std::string(st.message()).c_str());
    return 2;
  }

  StatusOr<Address> addr = ParseAddress(addr_s);
  if (!addr.ok()) return Fail(addr.status());
  StatusOr<UniqueFd> fd = Dial(*addr, static_cast<int>(timeout_s * 1000));
  if (!fd.ok()) return Fail(fd.status());
  std::unique_ptr<Transport> t =
      proto == "grpc" ? MakeGrpcTransport(std::move(*fd)) : MakeTtrpcTransport(std::move(*fd));

  std::string out;
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  std::string serialized = req->SerializeAsString();
  if (repeat > 0) {
    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < repeat; i++) {
      if (Status st = t->Call(full, serialized, &out, timeout); !st.ok()) return Fail(st);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    printf("{\"calls\": %ld, \"seconds\": %.6f, \"calls_per_second\": %.1f}\n", repeat, secs,
           repeat / secs);
    return 0;
  }
  if (Status st = t->Call(full, serialized, &out, timeout); !st.ok()) return Fail(st);
  std::unique_ptr<pb::Message> resp(factory.GetPrototype(method->output_type())->New());
  if (!resp->ParseFromString(out)) {
    return Fail(
        absl::DataLossError("the response is not a valid " + method->output_type()->full_name()));
  }
  std::string json;
  pb::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)pb::util::MessageToJsonString(*resp, &json, opts);
  fputs(json.c_str(), stdout);
  if (json.empty() || json.back() != '\n') fputc('\n', stdout);
  return 0;
}

}  // namespace kata::ctl

int main(int argc, char** argv) { return kata::ctl::Main(argc, argv); }
