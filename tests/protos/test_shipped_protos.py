"""`protos/google/rpc/` ships googleapis' error model (status, error details, codes) for
clients in other languages, verbatim: the files equal the copies in the
googleapis-common-protos package the server builds its errors with."""

from __future__ import annotations

from pathlib import Path

import google.rpc.status_pb2

PROTOS = Path(__file__).resolve().parents[2] / "protos"
PACKAGE = Path(google.rpc.status_pb2.__file__).parent
SHIPPED = ("code.proto", "error_details.proto", "status.proto")


def test_the_shipped_google_rpc_files_are_the_packaged_ones() -> None:
    assert sorted(p.name for p in (PROTOS / "google" / "rpc").iterdir()) == sorted(SHIPPED)
    for name in SHIPPED:
        shipped = (PROTOS / "google" / "rpc" / name).read_bytes()
        assert shipped == (PACKAGE / name).read_bytes(), name
        assert b"Licensed under the Apache License, Version 2.0" in shipped


def test_nothing_of_ours_is_generated_for_them() -> None:
    """Python uses googleapis-common-protos: no generated code beside the shipped files."""
    assert not list((PROTOS / "google").rglob("*.py*"))
