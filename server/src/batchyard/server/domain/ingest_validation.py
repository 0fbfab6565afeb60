"""Validation of an INGEST job's configuration (the IngestConfig in its protobuf JSON form,
field names as in the proto). Paths in the violations are relative to `config`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from batchyard.server.domain.errors import FieldViolation

MAX_FILES = 100_000
MAX_CONCURRENCY = 16
MAX_BAD_ROWS = 1_000_000
MAX_COLUMNS = 1600
MAX_REGEX = 1024
MAX_SOURCE = 1024
MAX_DEFAULT_BYTES = 64 * 1024
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
TABLE = re.compile(rf"^{IDENTIFIER}(\.{IDENTIFIER})?$")
S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/")
REGION = re.compile(r"^[a-z0-9-]{0,32}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COMPRESSIONS = {"INGEST_COMPRESSION_NONE", "INGEST_COMPRESSION_GZIP", "INGEST_COMPRESSION_ZSTD"}
COLUMN_TYPES = {
    f"INGEST_COLUMN_TYPE_{name}"
    for name in ("TEXT", "INTEGER", "DOUBLE", "BOOLEAN", "TIMESTAMP", "DATE", "JSON", "NUMERIC")
}


def validate_ingest(ingest: dict[str, Any]) -> list[FieldViolation]:
    """Every violation in an IngestConfig document, with paths below `ingest`."""
    out = _input(ingest.get("input") or {})
    out += _format(ingest.get("format") or {})
    table = ingest.get("table", "")
    if not table:
        out.append(FieldViolation("ingest.table", "required: schema.table or table"))
    elif not TABLE.match(table):
        out.append(FieldViolation("ingest.table", "must be table or schema.table (plain names)"))
    ledger = ingest.get("ledger_table", "")
    if ledger and not TABLE.match(ledger):
        out.append(FieldViolation("ingest.ledger_table", "must be table or schema.table"))
    out += _columns(ingest.get("columns") or [])
    if not 0 <= int(ingest.get("input_concurrency", 0)) <= MAX_CONCURRENCY:
        out.append(FieldViolation("ingest.input_concurrency", f"0 to {MAX_CONCURRENCY}"))
    out += _policy(ingest.get("error_policy") or {})
    return out


def _input(source: dict[str, Any]) -> list[FieldViolation]:
    out = []
    uri = source.get("uri", "")
    if not uri:
        out.append(
            FieldViolation("ingest.input.uri", "required: s3://bucket/key or s3://bucket/prefix/")
        )
    elif not S3_URI.match(uri) or CONTROL.search(uri):
        out.append(
            FieldViolation("ingest.input.uri", "must be s3://bucket/key or s3://bucket/prefix/")
        )
    if not REGION.match(source.get("region", "")):
        out.append(FieldViolation("ingest.input.region", "not a valid region name"))
    endpoint = source.get("endpoint_url", "")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            out.append(FieldViolation("ingest.input.endpoint_url", "must be an http(s):// URL"))
    pattern = source.get("regex_filter", "")
    if len(pattern) > MAX_REGEX:
        out.append(FieldViolation("ingest.input.regex_filter", f"at most {MAX_REGEX} characters"))
    else:
        try:
            re.compile(pattern)
        except re.error as exc:
            out.append(
                FieldViolation(
                    "ingest.input.regex_filter", f"not a valid regular expression: {exc}"
                )
            )
    if not 0 <= int(source.get("max_files", 0)) <= MAX_FILES:
        out.append(FieldViolation("ingest.input.max_files", f"0 (no limit) to {MAX_FILES}"))
    return out


def _format(form: dict[str, Any]) -> list[FieldViolation]:
    out = []
    compression = form.get("compression", "INGEST_COMPRESSION_UNSPECIFIED")
    if compression != "INGEST_COMPRESSION_UNSPECIFIED" and compression not in COMPRESSIONS:
        out.append(FieldViolation("ingest.format.compression", "unknown compression"))
    if "ndjson" in form:
        return out
    if "csv" not in form:
        return [*out, FieldViolation("ingest.format", "required: csv or ndjson")]
    csv = form["csv"]
    delimiter, quote = csv.get("delimiter", ","), csv.get("quote", '"')
    for name, value in (("delimiter", delimiter), ("quote", quote)):
        if len(value) != 1 or value in "\r\n":
            out.append(
                FieldViolation(f"ingest.format.csv.{name}", "one character, not a line break")
            )
    if delimiter == quote:
        out.append(FieldViolation("ingest.format.csv.quote", "must differ from the delimiter"))
    null = csv.get("null_string", "")
    if len(null) > 100 or CONTROL.search(null):
        out.append(
            FieldViolation(
                "ingest.format.csv.null_string", "at most 100 characters, no control characters"
            )
        )
    return out


def _columns(columns: list[dict[str, Any]]) -> list[FieldViolation]:
    if len(columns) > MAX_COLUMNS:
        return [FieldViolation("ingest.columns", f"at most {MAX_COLUMNS} columns")]
    out = []
    seen: set[str] = set()
    for i, column in enumerate(columns):
        path = f"ingest.columns[{i}]"
        name = column.get("name", "")
        if not name or len(name) > 63 or CONTROL.search(name):
            out.append(
                FieldViolation(f"{path}.name", "required: the target column (1 to 63 characters)")
            )
        elif name in seen:
            out.append(FieldViolation(f"{path}.name", f"column {name!r} is mapped twice"))
        seen.add(name)
        source = column.get("source", "")
        if len(source) > MAX_SOURCE or CONTROL.search(source):
            out.append(
                FieldViolation(
                    f"{path}.source", f"at most {MAX_SOURCE} characters, no control characters"
                )
            )
        kind = column.get("type", "INGEST_COLUMN_TYPE_UNSPECIFIED")
        if kind != "INGEST_COLUMN_TYPE_UNSPECIFIED" and kind not in COLUMN_TYPES:
            out.append(FieldViolation(f"{path}.type", "unknown column type"))
        if len(column.get("timestamp_format", "")) > 100:
            out.append(FieldViolation(f"{path}.timestamp_format", "at most 100 characters"))
        default = column.get("default_value", "")
        if len(default.encode("utf-8")) > MAX_DEFAULT_BYTES or "\x00" in default:
            out.append(FieldViolation(f"{path}.default_value", "at most 64 KiB, no NUL"))
    return out


def _policy(policy: dict[str, Any]) -> list[FieldViolation]:
    if "skip_rows" not in policy:
        return []
    limit = int(policy["skip_rows"].get("max_bad_rows", 0))
    if not 1 <= limit <= MAX_BAD_ROWS:
        return [
            FieldViolation("ingest.error_policy.skip_rows.max_bad_rows", f"1 to {MAX_BAD_ROWS}")
        ]
    return []
