"""Writes connect.fds: the FileDescriptorSet of Spark Connect's protocol (package spark.connect),
taken from the generated modules in pyspark's wheel (which ships no .proto files).

    python3 -m venv V && V/bin/pip install 'pyspark[connect]==4.3.0'
    V/bin/python proto/spark/dump_descriptors.py proto/spark/connect.fds
"""
import importlib
import pkgutil
import sys

from google.protobuf import descriptor_pb2
import pyspark.sql.connect.proto as spark_proto

out = descriptor_pb2.FileDescriptorSet()
seen = set()


def add(fd):
    if fd.name in seen:
        return
    for dep in fd.dependencies:
        add(dep)
    seen.add(fd.name)
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    out.file.append(proto)


for mod in pkgutil.iter_modules(spark_proto.__path__):
    if mod.name.endswith("_pb2"):
        add(importlib.import_module(f"pyspark.sql.connect.proto.{mod.name}").DESCRIPTOR)

with open(sys.argv[1], "wb") as f:
    f.write(out.SerializeToString())
print(f"{len(out.file)} files: {', '.join(sorted(seen))}")
