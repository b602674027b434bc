#!/usr/bin/python3
"""Writes the wire-compatibility table of the agent API from a protobuf descriptor set.

Run once against the upstream Kata Containers protos (src/libs/protocols/protos):
  protoc -I<upstream protos> -I/usr/include --include_imports \
      --descriptor_set_out=/tmp/upstream.pb agent.proto health.proto
  tests/unit/data/make_golden.py /tmp/upstream.pb > tests/unit/data/api_golden.txt

The table holds facts only: one line per method and one per message field.
  method <full method path> <input type> <output type>
  field <message> <field name> <number> <type> <label> [<type name>]
  enum <enum> <value name> <number>
"""
import sys
from google.protobuf import descriptor_pb2

PACKAGES = ("grpc", "types")


def walk_messages(prefix, messages, out):
    for m in messages:
        name = f"{prefix}.{m.name}"
        for f in m.field:
            label = descriptor_pb2.FieldDescriptorProto.Label.Name(f.label)
            ftype = descriptor_pb2.FieldDescriptorProto.Type.Name(f.type)
            line = f"field {name} {f.name} {f.number} {ftype} {label}"
            if f.type_name:
                line += " " + f.type_name.lstrip(".")
            if f.HasField("oneof_index") and not f.proto3_optional:
                line += f" oneof={m.oneof_decl[f.oneof_index].name}"
            if f.proto3_optional:
                line += " proto3_optional"
            out.append(line)
        for e in m.enum_type:
            for v in e.value:
                out.append(f"enum {name}.{e.name} {v.name} {v.number}")
        walk_messages(name, m.nested_type, out)


def main():
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(open(sys.argv[1], "rb").read())
    out = []
    for f in fds.file:
        if f.package not in PACKAGES:
            continue
        for s in f.service:
            for m in s.method:
                out.append(f"method /{f.package}.{s.name}/{m.name} {m.input_type.lstrip('.')} {m.output_type.lstrip('.')}")
        walk_messages(f.package, f.message_type, out)
        for e in f.enum_type:
            for v in e.value:
                out.append(f"enum {f.package}.{e.name} {v.name} {v.number}")
    for line in sorted(set(out)):
        print(line)


if __name__ == "__main__":
    main()
