"""Render protos/README.md, the gRPC API reference, from the .proto files and their comments.

`generate.py` writes it with the code and `generate.py --check` fails when it is stale, so
the reference always says what the protos say.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
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
  of [`ErrorReason`](#errorreason) without its prefix, e.g. `RUN_NOT_FOUND`) and, for bad
  input, a `BadRequest` naming each bad field by its path (e.g.
  `definition.config.timeout`). Each method below lists the reasons particular to it (its
  `batchyard.v1.error_reasons` option, which reflection shows too); any method may also
  answer `INVALID_FIELD`, `UNAUTHENTICATED`, `PERMISSION_DENIED`, `CONCURRENCY_LIMIT`,
  `SERVER_UNAVAILABLE` and `INTERNAL`. Another workspace's objects answer exactly as
  missing ones do. [Decoding errors](#decoding-errors) shows how, outside Python.
* **Paging.** Every list takes `page_size` and `page_token` and answers `next_page_token`
  (empty on the last page). A token only continues the query it came from.
* **Times and durations** are `google.protobuf.Timestamp` and `Duration` (JSON: RFC 3339
  strings and `"90s"`).
"""


OTHER_LANGUAGES = """\
## From other languages

What a client not written in Python trips on.

### Decoding errors

The error details are googleapis' `google.rpc.Status`, `ErrorInfo` and `BadRequest`. Their
files ship here, verbatim, in `google/rpc/` (`status.proto`, `error_details.proto`,
`code.proto`, Apache-2.0) and are part of this folder's buf module, so `buf generate`
makes them for your language beside `batchyard/v1`. Go needs none of them: grpc-go's
`status` package and googleapis' generated `errdetails` decode the trailer:

```go
import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// reason ("RUN_NOT_FOUND", ...) and the bad fields by path, from any error of a call.
func batchyardError(err error) (reason string, fields map[string]string) {
	fields = map[string]string{}
	for _, detail := range status.Convert(err).Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields[v.GetField()] = v.GetDescription()
			}
		}
	}
	return reason, fields
}
```

In Node, with `@grpc/grpc-js`, `@grpc/proto-loader` and `protobufjs`, run from the
repository root:

```js
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");
const path = require("path");

const options = {
  includeDirs: ["protos"],
  longs: String, // 64-bit integers as decimal strings
  enums: String,
  defaults: true, // fields at their zero value present (else absent)
  oneofs: true, // which field of a oneof, and whether an `optional` field, is set
};
const api = grpc.loadPackageDefinition(
  protoLoader.loadSync("batchyard/v1/run_service.proto", options),
).batchyard.v1;

const rpc = new protobuf.Root();
rpc.resolvePath = (origin, target) => path.join("protos", target);
rpc.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = rpc.lookupType("google.rpc.Status");
const ErrorInfo = rpc.lookupType("google.rpc.ErrorInfo");
const BadRequest = rpc.lookupType("google.rpc.BadRequest");

// { code, message, reason: "RUN_NOT_FOUND", fields: { "definition.name": "required" } }
function batchyardError(err) {
  const [details] = err.metadata.get("grpc-status-details-bin"); // a Buffer
  const out = { code: err.code, message: err.details, reason: "", fields: {} };
  if (!details) return out; // not from the server, e.g. a deadline of the client's
  for (const any of Status.decode(details).details) {
    const type = any.type_url.slice(any.type_url.lastIndexOf("/") + 1); // bundled Any: snake_case
    if (type === "google.rpc.ErrorInfo") out.reason = ErrorInfo.decode(any.value).reason;
    if (type === "google.rpc.BadRequest") {
      for (const v of BadRequest.decode(any.value).fieldViolations) {
        out.fields[v.field] = v.description;
      }
    }
  }
  return out;
}

const runs = new api.RunService("localhost:50051", grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
metadata.set("authorization", `Bearer ${process.env.BATCHYARD_TOKEN}`);
runs.getRun({ run: "00000000-0000-0000-0000-000000000000" }, metadata, (err, reply) => {
  if (err) console.log(batchyardError(err)); // code: 5, reason: 'RUN_NOT_FOUND'
  else console.log(reply.run.revision); // a string, e.g. "3" (longs: String)
});
```

### 64-bit integers

These fields are 64-bit: {int64_fields}. JavaScript numbers hold integers exactly only
up to 2^53, so the proto3 JSON mapping (`buf curl`, `grpcurl`, Connect, protobufjs'
`toObject`) writes them as decimal strings, `"revision": "42"`, and reads a string or a
number. `@grpc/proto-loader` gives `Long` objects unless loaded with `longs: String` (or
`longs: Number`, exact while below 2^53); protobuf-es gives `bigint`. Compare and store
them as strings or big integers, not as floats.

### Optional fields

These fields are `optional`, so whether they are set is part of the value: {optional_fields}.
Unset is not 0: an attempt killed at its timeout has no `exit_code`, while 0 is a
success; a `RenewLease` without `progress` leaves the progress as it was. Go gives a
pointer (`nil` when unset), protobuf-es and JSON leave the field out. `@grpc/proto-loader`
(as loaded above) leaves an unset `optional` field out even with `defaults: true`, and with
`oneofs: true` names a set one in its synthetic oneof: `attempt._exitCode === "exitCode"`.
Without `defaults: true` it leaves out every field at its zero value (0, "", false, the
first enum value), `optional` or not, so `"exitCode" in attempt` is a presence test only
for `optional` fields. Message fields (`Timestamp`, `Duration`, `LogPosition`, …)
have presence too: an unset `end_time` means the run has not ended.

### SHELL jobs: `source_location` is the command

A `JOB_TYPE_SHELL` job runs a program without a shell: `<source_location> <args…>`. With
no `source`, `source_location` is the command itself, a name looked up on the job's
`PATH` or an absolute path, and `args` are its arguments:
`{"type": "JOB_TYPE_SHELL", "sourceLocation": "echo", "args": ["hello"]}`. There is no
`command` field, and `source_location` is not a command line: `"echo hello"` names a
program called `echo hello`. Pipes, globs and `$VARS` need a shell you name:
`"sourceLocation": "sh", "args": ["-c", "ls *.csv | wc -l"]`. With a `source`,
`source_location` is a file inside it (e.g. `"bin/run.sh"`; an inline source's default is
`"main.sh"`), executed directly when it starts with `#!` or is a binary, else by `/bin/sh`.

### Log positions: "from the start"

A `LogPosition` is (`attempt`, `seq`), log order is attempt then seq, and `seq` starts at 1
in every attempt. `after` is exclusive: the entries returned come after it. "From the
start" is `after` unset, which is the same as `{attempt: 0, seq: 0}`: the first entry of
the first attempt (of `attempt`, when that filter is set). `{attempt: 2, seq: 0}` starts at
attempt 2's first entry. To resume, pass back the `last_position` (GetLogs) or `position`
(TailLogs) you received (with filters it can lie past the last entry sent), or the last
entry's own (`attempt`, `seq`); not `seq` plus one, which skips an entry. A log with
nothing new answers the position you sent, so a reader can poll with it. `TailLogs` with
`only_new` skips what is stored and starts at the current end.
"""


def fields_where(
    files: list[descriptor_pb2.FileDescriptorProto],
    wanted: Callable[[descriptor_pb2.FieldDescriptorProto], bool],
) -> str:
    """`Message.field` links for every field of ours that `wanted` picks, in file order."""
    found = []

    def walk(message: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        name = f"{prefix}{message.name}"
        for field in message.field:
            if wanted(field):
                found.append(f"[`{name}.{field.name}`](#{anchor(name)})")
        for nested in message.nested_type:
            if not nested.options.map_entry:
                walk(nested, f"{name}.")

    for file in files:
        for message in file.message_type:
            walk(message, "")
    return ", ".join(found)


def other_languages(files: list[descriptor_pb2.FileDescriptorProto]) -> str:
    sixty_four = {
        descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
        descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
        descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
        descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64,
        descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64,
    }
    return OTHER_LANGUAGES.replace(
        "{int64_fields}", fields_where(files, lambda f: f.type in sixty_four)
    ).replace("{optional_fields}", fields_where(files, lambda f: f.proto3_optional))


ERROR_REASONS_OPTION = 51000  # batchyard.v1.error_reasons, a repeated ErrorReason (errors.proto)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def error_reasons(options: descriptor_pb2.MethodOptions) -> list[int]:
    """The `error_reasons` option's values, read from the wire form (the option is an
    extension this script does not import: it may be generating it)."""
    data, at, found = options.SerializeToString(), 0, []
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            if number == ERROR_REASONS_OPTION:
                found.append(value)
        elif wire == 2:
            size, at = _varint(data, at)
            body, at = data[at : at + size], at + size
            if number == ERROR_REASONS_OPTION:
                inner = 0
                while inner < len(body):
                    value, inner = _varint(body, inner)
                    found.append(value)
        else:
            at += {1: 8, 5: 4}[wire]
    return found


def error_reason_names(files: list[descriptor_pb2.FileDescriptorProto]) -> dict[int, str]:
    for file in files:
        for enum in file.enum_type:
            if enum.name == "ErrorReason":
                return {v.number: v.name.removeprefix("ERROR_REASON_") for v in enum.value}
    return {}


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
    reasons = error_reason_names(ours)
    out = [INTRO, other_languages(ours), "## Services", ""]
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
                if named := [reasons[r] for r in error_reasons(method.options)]:
                    text += " Errors: " + ", ".join(f"`{r}`" for r in named) + "."
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
