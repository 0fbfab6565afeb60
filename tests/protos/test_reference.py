"""The API reference (protos/tools/api_reference.py) reads each method's `error_reasons`
option from the wire form, without the generated extension: it agrees with protobuf."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_pb2

from batchyard.v1 import errors_pb2
from tests.rpc import API_MODULES, methods_of

TOOLS = Path(__file__).resolve().parents[2] / "protos" / "tools"


def api_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_reference", TOOLS / "api_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_reads_every_methods_error_reasons() -> None:
    reference = api_reference()
    assert errors_pb2.error_reasons.number == reference.ERROR_REASONS_OPTION
    for method in methods_of(*API_MODULES):
        proto = descriptor_pb2.MethodDescriptorProto()
        method.CopyToProto(proto)
        expected = list(method.GetOptions().Extensions[errors_pb2.error_reasons])
        assert reference.error_reasons(proto.options) == expected, method.full_name
        assert expected or method.name in {"CreateToken", "LeaseRuns"}, method.full_name
