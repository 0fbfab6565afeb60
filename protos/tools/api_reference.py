"""Render protos/README.md, the gRPC API reference, from the .proto files and their comments.

`generate.py` writes it with the code and `generate.py --check` fails when it is stale, so
the reference always says what the protos say.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import descriptor_pb2

PROTOS = Path(__file__).resolve().parent.parent
PACKAGE = "batchyard.v1"

INTRO = """\
# Batchyard gRPC API reference (`batchyard.v1`)

Generated from the `.proto` files in `batchyard/v1/` by `protos/tools/generate.py` (do not
edit by hand: CI checks it is fresh). The Python stubs are the `batchyard-protos` package
(`from batchyard.v1 import run_service_pb2_grpc`); any language can generate its own.

## Calling the API

* **Authentication.** Every call of the services below carries an API token as metadata:
  `authorization: Bearer byt_…`. The token decides the workspace and the role (admin,
  member, viewer, worker); a request never names a workspace. `batchyard dev` writes one
  for you to `~/.config/batchyard/dev-token`; `batchyard server bootstrap` prints the
  first admin token of a server.
* **Reflection and health.** The server serves `grpc.reflection.v1alpha` and
  `grpc.health.v1.Health`, so `buf curl` and `grpcurl` need no proto files. With
  `batchyard dev` running (the README's quick start shows more):

  ```sh
  TOKEN=$(cat ~/.config/batchyard/dev-token)
  buf curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer $TOKEN" \\
      --data '{"pageSize": 5}' http://localhost:50051/batchyard.v1.RunService/ListRuns
  ```

  `grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:50051 list` works the
  same way.
* **Errors.** Canonical status codes, with a `google.rpc.Status` in the
  `grpc-status-details-bin` trailer: an `ErrorInfo` (domain `batchyard.dev`, `reason` one
  of [`ErrorReason`](#errorreason)) and, for bad input, a `BadRequest` naming each bad field
  by its path (e.g. `definition.config.timeout`). Another workspace's objects answer exactly
  as missing ones do.
* **Paging.** Every list takes `page_size` and `page_token` and answers `next_page_token`
  (empty on the last page). A token only continues the query it came from.
* **Times and durations** are `google.protobuf.Timestamp` and `Duration` (JSON: RFC 3339
  strings and `"90s"`).
"""


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The package's files with their comments (protoc's source info)."""
    sources = sorted(
        str(p.relative_to(PROTOS)) for p in (PROTOS / "batchyard" / "v1").glob("*.proto")
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--proto_path={PROTOS}",
                f"--descriptor_set_out={out}",
                "--include_source_info",
                *sources,
            ],
            check=True,
            cwd=PROTOS,
        )
        found = descriptor_pb2.FileDescriptorSet()
        found.ParseFromString(out.read_bytes())
        return found


class Comments:
    """Leading comments of one file, by element path."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path = {
            tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
        }

    def of(self, *path: int) -> str:
        return " ".join(line.strip() for line in self._by_path.get(path, "").splitlines())


# Field numbers in descriptor.proto, for source-info paths.
MESSAGE, ENUM, SERVICE = 4, 5, 6
FIELD, NESTED, NESTED_ENUM = 2, 3, 4
METHOD, VALUE = 2, 2

SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}


def anchor(name: str) -> str:
    return name.lower().replace(".", "")


def type_link(type_name: str) -> str:
    """A message or enum type as a link when it is ours, else its full name."""
    name = type_name.lstrip(".")
    if name.startswith(PACKAGE + "."):
        short = name.removeprefix(PACKAGE + ".")
        return f"[`{short}`](#{anchor(short)})"
    return f"`{name}`"


def field_type(
    field: descriptor_pb2.FieldDescriptorProto, maps: dict[str, descriptor_pb2.DescriptorProto]
) -> str:
    if field.type_name.lstrip(".") in maps:
        entry = maps[field.type_name.lstrip(".")]
        key, value = entry.field
        return f"map<{field_type(key, maps)}, {field_type(value, maps)}>"
    base = SCALARS.get(field.type) or type_link(field.type_name)
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {base}"
    if field.proto3_optional:
        return f"optional {base}"
    return base


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_message(
    out: list[str],
    message: descriptor_pb2.DescriptorProto,
    prefix: str,
    path: tuple[int, ...],
    comments: Comments,
    maps: dict[str, descriptor_pb2.DescriptorProto],
) -> None:
    if message.options.map_entry:
        return
    name = f"{prefix}{message.name}"
    out += [f"### {name}", "", comments.of(*path) or "", ""]
    if message.field:
        out += ["| field | type | description |", "|---|---|---|"]
        for i, field in enumerate(message.field):
            oneof = ""
            if field.HasField("oneof_index") and not field.proto3_optional:
                oneof = f" (one of `{message.oneof_decl[field.oneof_index].name}`)"
            text = comments.of(*path, FIELD, i) + oneof
            out.append(f"| `{field.name}` | {field_type(field, maps)} | {cell(text)} |")
        out.append("")
    for i, nested in enumerate(message.nested_type):
        render_message(out, nested, f"{name}.", (*path, NESTED, i), comments, maps)
    for i, enum in enumerate(message.enum_type):
        render_enum(out, enum, f"{name}.", (*path, NESTED_ENUM, i), comments)


def render_enum(
    out: list[str],
    enum: descriptor_pb2.EnumDescriptorProto,
    prefix: str,
    path: tuple[int, ...],
    comments: Comments,
) -> None:
    out += [f"### {prefix}{enum.name}", "", comments.of(*path) or "", ""]
    out += ["| value | number | description |", "|---|---|---|"]
    for i, value in enumerate(enum.value):
        text = comments.of(*path, VALUE, i)
        out.append(f"| `{value.name}` | {value.number} | {cell(text)} |")
    out.append("")


def map_entries(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> dict[str, descriptor_pb2.DescriptorProto]:
    found: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(message: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        full = f"{prefix}.{message.name}"
        if message.options.map_entry:
            found[full] = message
        for nested in message.nested_type:
            walk(nested, full)

    for file in files:
        for message in file.message_type:
            walk(message, file.package)
    return found


ORDER = ("definition", "run", "log", "worker", "access", "result", "job", "errors")


def _reading_order(file: descriptor_pb2.FileDescriptorProto) -> tuple[int, str]:
    """Users' services first (definitions, runs, logs), then workers', then access."""
    stem = Path(file.name).stem.removesuffix("_service")
    return (ORDER.index(stem) if stem in ORDER else len(ORDER), file.name)


def render(files: list[descriptor_pb2.FileDescriptorProto]) -> str:
    ours = sorted((f for f in files if f.package == PACKAGE), key=_reading_order)
    maps = map_entries(ours)
    out = [INTRO, "## Services", ""]
    for file in ours:
        comments = Comments(file)
        for s, service in enumerate(file.service):
            out += [f"### {service.name}", "", comments.of(SERVICE, s), ""]
            out += ["| method | request → response | description |", "|---|---|---|"]
            for m, method in enumerate(service.method):
                request = ("stream " if method.client_streaming else "") + type_link(
                    method.input_type
                )
                response = ("stream " if method.server_streaming else "") + type_link(
                    method.output_type
                )
                text = comments.of(SERVICE, s, METHOD, m)
                out.append(f"| `{method.name}` | {request} → {response} | {cell(text)} |")
            out.append("")
    out += ["## Messages", ""]
    for file in ours:
        comments = Comments(file)
        for i, message in enumerate(file.message_type):
            render_message(out, message, "", (MESSAGE, i), comments, maps)
    out += ["## Enums", ""]
    for file in ours:
        comments = Comments(file)
        for i, enum in enumerate(file.enum_type):
            render_enum(out, enum, "", (ENUM, i), comments)
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def reference() -> str:
    return render(list(descriptor_set().file))


if __name__ == "__main__":
    sys.stdout.write(reference())
