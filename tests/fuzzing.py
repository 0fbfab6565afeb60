"""Hostile requests for the fuzz tests, seeded: random messages built from the descriptors,
then random and truncated bytes, flipped bits, invalid UTF-8 in string fields, deep group
nesting, huge repeated fields, unknown fields, and odd metadata (huge values, binary keys,
many keys, bad authorization headers). Everything is sent as raw bytes."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

Metadata = tuple[tuple[str, str | bytes], ...]
F = FieldDescriptor
_INTS = [0, 1, -1, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63), 2**64 - 1, 10**12]
_FLOATS = [0.0, -0.0, 1.5, -1e308, 1e308, math.inf, -math.inf, math.nan, 5e-324]
_SIGNED = {F.TYPE_INT32: 31, F.TYPE_SINT32: 31, F.TYPE_SFIXED32: 31, F.TYPE_INT64: 63}
_SIGNED |= {F.TYPE_SINT64: 63, F.TYPE_SFIXED64: 63, F.TYPE_ENUM: 31}
_UNSIGNED = {F.TYPE_UINT32: 32, F.TYPE_FIXED32: 32, F.TYPE_UINT64: 64, F.TYPE_FIXED64: 64}
_TEXTS = [
    "",
    "default",
    "../../etc/passwd",
    "byt_000000000000_" + "A" * 43,
    "00000000-0000-0000-0000-000000000000",
    "' OR 1=1; --",
    "\x00nul",
    "ünïcødé 🚀",
    "a\nb\r\nc",
    "%s%n{}{0}",
]


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


@dataclass(frozen=True)
class Case:
    """One call: what kind of abuse, the request message(s) as bytes, the metadata."""

    kind: str
    messages: tuple[bytes, ...]
    metadata: Metadata


class Fuzzer:
    """Cases for one server, seeded. `token` is a valid admin token: most cases carry it,
    so that the requests reach the methods themselves."""

    MAX_BYTES = 7 * 1024 * 1024
    """Below the server's default receive limit: huge but served."""

    def __init__(self, seed: int, token: str) -> None:
        self.rng = random.Random(seed)
        self.token = token

    # ------------------------------------------------------------ messages

    def message(self, descriptor: Descriptor, depth: int = 0) -> Message:
        """A random message of `descriptor`, fields set at random (nested up to depth 3)."""
        message = message_factory.GetMessageClass(descriptor)()
        for field in descriptor.fields:
            if self.rng.random() < 0.4:
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                self._fill_map(message, field, depth)
            elif field.is_repeated:
                for _ in range(self.rng.randrange(4)):
                    self._append(message, field, depth)
            elif field.message_type is not None:
                if depth < 3:
                    getattr(message, field.name).CopyFrom(
                        self.message(field.message_type, depth + 1)
                    )
            else:
                setattr(message, field.name, self.scalar(field))
        return message

    def _append(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        values = getattr(message, field.name)
        if field.message_type is None:
            values.append(self.scalar(field))
        elif depth < 3:
            values.add().CopyFrom(self.message(field.message_type, depth + 1))

    def _fill_map(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        entry = field.message_type
        assert entry is not None
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        entries = getattr(message, field.name)
        for _ in range(self.rng.randrange(4)):
            key = self.scalar(key_field)
            if value_field.message_type is None:
                entries[key] = self.scalar(value_field)
            elif depth < 3:
                entries[key].CopyFrom(self.message(value_field.message_type, depth + 1))

    def scalar(self, field: FieldDescriptor) -> object:
        kind, rng = field.type, self.rng
        if kind == F.TYPE_STRING:
            return self.text()
        if kind == F.TYPE_BYTES:
            return rng.randbytes(rng.choice([0, 1, 16, 1024, 70_000]))
        if kind == F.TYPE_BOOL:
            return rng.random() < 0.5
        if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            value = rng.choice(_FLOATS)
            return value if kind == F.TYPE_DOUBLE or not math.isfinite(value) else 1.5
        if kind in _SIGNED:
            bits = _SIGNED[kind]
            return max(-(2**bits), min(2**bits - 1, rng.choice(_INTS)))
        return max(0, min(2 ** _UNSIGNED[kind] - 1, rng.choice(_INTS)))

    def text(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.5:
            return rng.choice(_TEXTS)
        if pick < 0.8:
            size = rng.choice([1, 8, 64, 300, 5000])
            return "".join(
                chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0xD7FF)]))
                for _ in range(size)
            )
        return rng.choice("ab-_./") * rng.choice([64, 256, 100_000])

    # ------------------------------------------------------------ raw bytes

    def garbage(self, valid: bytes) -> tuple[str, bytes]:
        """Bytes that are (mostly) not a valid message."""
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:
            return "random", rng.randbytes(rng.randrange(1, 300))
        if choice == 1 and len(valid) > 1:
            return "truncated", valid[: rng.randrange(1, len(valid))]
        if choice == 2 and valid:
            flipped = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            return "flipped", bytes(flipped)
        if choice == 3:
            return "unknown-fields", valid + self.unknown_fields()
        return "bad-varint", valid + tag(rng.randrange(1, 50), 0) + b"\xff" * 11

    def unknown_fields(self) -> bytes:
        rng, out = self.rng, bytearray()
        for _ in range(rng.randrange(1, 6)):
            number = rng.randrange(1000, 536_870_911)
            wire = rng.choice([0, 1, 2, 5])
            body = {0: varint(rng.getrandbits(64)), 1: rng.randbytes(8), 5: rng.randbytes(4)}
            out += tag(number, wire) + body.get(wire, varint(3) + b"abc")
        return bytes(out)

    def deep_nesting(self) -> bytes:
        """Groups nested far beyond the parser's depth limit."""
        depth = self.rng.choice([101, 1000, 50_000])
        return tag(999, 3) * depth + tag(999, 4) * depth

    def bad_utf8(self, descriptor: Descriptor) -> bytes | None:
        """A string field (at some depth) holding bytes that are not UTF-8."""
        path = self._path_to(descriptor, lambda f: f.type == F.TYPE_STRING)
        if path is None:
            return None
        payload = self.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf0\x28\x8c\x28"])
        return self._nest(path, payload)

    def huge_repeated(self, descriptor: Descriptor) -> bytes | None:
        """A repeated string or message field with a huge number of tiny entries."""
        path = self._path_to(
            descriptor,
            lambda f: f.is_repeated and f.type in (F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_MESSAGE),
        )
        if path is None:
            return None
        count = self.rng.choice([100_000, 1_000_000, 2_000_000])
        entry = length_delimited(path[-1].number, b"x" if path[-1].type != F.TYPE_MESSAGE else b"")
        entries = entry * min(count, self.MAX_BYTES // len(entry))
        return self._wrap(path[:-1], entries)

    def _path_to(
        self, descriptor: Descriptor, wanted: Callable[[FieldDescriptor], bool], depth: int = 0
    ) -> list[FieldDescriptor] | None:
        fields = list(descriptor.fields)
        self.rng.shuffle(fields)
        for field in fields:
            if wanted(field):
                return [field]
        if depth < 3:
            for field in fields:
                if field.message_type is not None and not field.message_type.GetOptions().map_entry:
                    found = self._path_to(field.message_type, wanted, depth + 1)
                    if found:
                        return [field, *found]
        return None

    def _nest(self, path: list[FieldDescriptor], payload: bytes) -> bytes:
        return self._wrap(path[:-1], length_delimited(path[-1].number, payload))

    @staticmethod
    def _wrap(outer: list[FieldDescriptor], inner: bytes) -> bytes:
        for field in reversed(outer):
            inner = length_delimited(field.number, inner)
        return inner

    # ------------------------------------------------------------ metadata

    def metadata(self) -> tuple[str, Metadata]:
        rng = self.rng
        good = (("authorization", f"Bearer {self.token}"),)
        choice = rng.randrange(12)
        if choice < 5:
            return "token", good
        if choice == 5:
            return "no-token", ()
        if choice == 6:
            bad = rng.choice(
                [
                    "Bearer",
                    "Bearer ",
                    "Basic dXNlcjpwYXNz",
                    "bearer " + self.token[:-1] + "x",
                    "Bearer " + "A" * 4000,
                    "Bearer byt_zzzzzzzzzzzz_" + "b" * 43,
                    "Bearer  " + self.token + "  ",
                    "Token " + self.token,
                ]
            )
            return "bad-authorization", (("authorization", bad),)
        if choice == 7:
            return "two-authorizations", (("authorization", "Bearer nope"), *good)
        if choice == 8:
            binary = tuple((f"x-fuzz-{i}-bin", rng.randbytes(rng.randrange(64))) for i in range(4))
            return "binary-keys", (*good, *binary, ("authorization-bin", rng.randbytes(16)))
        if choice == 9:
            many = tuple((f"x-k{i}", "v" * rng.randrange(8)) for i in range(rng.choice([50, 200])))
            return "many-keys", (*good, *many)
        if choice == 10:
            return "huge-value", (*good, ("x-huge", "h" * rng.choice([12_000, 64_000])))
        return "odd-values", (*good, ("x-odd", " ~!@#$%^&*() "), ("grpc-fake", "1"))

    # ------------------------------------------------------------ cases

    def case(self, method: MethodDescriptor) -> Case:
        descriptor = method.input_type
        valid = self.message(descriptor).SerializeToString()
        pick = self.rng.random()
        kind, body = "valid", valid
        if pick < 0.35:
            kind, body = self.garbage(valid)
        elif pick < 0.45:
            kind, body = "deep-nesting", self.deep_nesting()
        elif pick < 0.55:
            body = self.bad_utf8(descriptor) or valid
            kind = "bad-utf8" if body is not valid else kind
        elif pick < 0.6:
            body = self.huge_repeated(descriptor) or valid
            kind = "huge-repeated" if body is not valid else kind
        elif pick < 0.62:
            kind, body = "over-limit", b"\x0a" + varint(9 * 1024 * 1024) + bytes(9 * 1024 * 1024)
        meta_kind, metadata = self.metadata()
        messages: tuple[bytes, ...] = (body,)
        if method.client_streaming:
            messages = (
                body,
                *(
                    self.message(descriptor).SerializeToString()
                    for _ in range(self.rng.randrange(3))
                ),
            )
        return Case(f"{kind}/{meta_kind}", messages, metadata)
