// Our compiled descriptors against the wire-compatibility table (data/api_golden.txt):
// every method path, message field (name, number, type, label, type name) and enum value
// must match, and nothing may be missing on either side.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "agent.pb.h"
#include "health.pb.h"

namespace pb = google::protobuf;

namespace {

void WalkMessage(const pb::Descriptor* m, std::set<std::string>* out) {
  for (int i = 0; i < m->field_count(); i++) {
    const pb::FieldDescriptor* f = m->field(i);
    pb::FieldDescriptorProto fp;
    f->CopyTo(&fp);
    std::ostringstream line;
    line << "field " << m->full_name() << " " << f->name() << " " << f->number() << " "
         << pb::FieldDescriptorProto::Type_Name(fp.type()) << " "
         << pb::FieldDescriptorProto::Label_Name(fp.label());
    if (!fp.type_name().empty()) line << " " << fp.type_name().substr(fp.type_name()[0] == '.' ? 1 : 0);
    if (f->containing_oneof() && !fp.proto3_optional()) line << " oneof=" << f->containing_oneof()->name();
    if (fp.proto3_optional()) line << " proto3_optional";
    out->insert(line.str());
  }
  for (int i = 0; i < m->enum_type_count(); i++) {
    const pb::EnumDescriptor* e = m->enum_type(i);
    for (int j = 0; j < e->value_count(); j++) {
      out->insert("enum " + e->full_name() + " " + e->value(j)->name() + " " + std::to_string(e->value(j)->number()));
    }
  }
  for (int i = 0; i < m->nested_type_count(); i++) {
    if (m->nested_type(i)->options().map_entry()) {
      WalkMessage(m->nested_type(i), out);
      continue;
    }
    WalkMessage(m->nested_type(i), out);
  }
}

std::set<std::string> OurTable() {
  (void)grpc::CheckRequest::descriptor();
  (void)grpc::CreateContainerRequest::descriptor();
  std::set<std::string> out;
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  for (const char* file : {"agent.proto", "oci.proto", "types.proto", "health.proto", "csi.proto"}) {
    const pb::FileDescriptor* fd = pool->FindFileByName(file);
    REQUIRE(fd != nullptr);
    for (int i = 0; i < fd->service_count(); i++) {
      const pb::ServiceDescriptor* s = fd->service(i);
      for (int j = 0; j < s->method_count(); j++) {
        out.insert("method /" + s->full_name() + "/" + s->method(j)->name() + " " +
                   s->method(j)->input_type()->full_name() + " " + s->method(j)->output_type()->full_name());
      }
    }
    for (int i = 0; i < fd->message_type_count(); i++) WalkMessage(fd->message_type(i), &out);
    for (int i = 0; i < fd->enum_type_count(); i++) {
      const pb::EnumDescriptor* e = fd->enum_type(i);
      for (int j = 0; j < e->value_count(); j++) {
        out.insert("enum " + e->full_name() + " " + e->value(j)->name() + " " + std::to_string(e->value(j)->number()));
      }
    }
  }
  return out;
}

std::set<std::string> Golden() {
  std::ifstream f(KATA_TEST_DATA_DIR "/api_golden.txt");
  REQUIRE(f.good());
  std::set<std::string> out;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

}  // namespace

TEST_CASE("every line of the golden API table is in our descriptors") {
  auto ours = OurTable();
  auto golden = Golden();
  REQUIRE(golden.size() > 400);
  size_t methods = 0;
  for (const auto& line : golden) {
    INFO(line);
    CHECK(ours.count(line) == 1);
    methods += line.rfind("method ", 0) == 0;
  }
  CHECK(methods == 44);  // 42 AgentService methods + Health.Check and Health.Version
}

TEST_CASE("our descriptors declare nothing beyond the golden API table") {
  auto ours = OurTable();
  auto golden = Golden();
  for (const auto& line : ours) {
    INFO(line);
    CHECK(golden.count(line) == 1);
  }
}
