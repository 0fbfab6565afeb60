"""Generate the Python code for batchyard.v1 from the .proto files.

Run from anywhere: `uv run protos/tools/generate.py` writes `*_pb2.py`, `*_pb2.pyi`,
`*_pb2_grpc.py` and `*_pb2_grpc.pyi` next to the protos, and the API reference
`protos/README.md` (from the proto comments). With `--check` it generates into a temporary
folder and exits 1 if the committed files differ.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_reference import reference

PROTOS = Path(__file__).resolve().parent.parent
PACKAGE = Path("batchyard") / "v1"


def generate(out: Path) -> None:
    """Run protoc (grpcio-tools) with the mypy-protobuf plugins into `out`."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / PACKAGE).glob("*.proto"))
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTOS}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    subprocess.run(cmd, check=True, cwd=PROTOS)
    (out / PACKAGE / "__init__.py").write_text('"""Generated gRPC API: package batchyard.v1."""\n')


def generated_files(root: Path) -> list[str]:
    return sorted(
        p.name
        for p in (root / PACKAGE).iterdir()
        if p.name.endswith((".py", ".pyi")) and p.is_file()
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / PACKAGE).mkdir(parents=True)
        generate(out)
        if args.check:
            fresh, committed = generated_files(out), generated_files(PROTOS)
            if fresh != committed:
                print(f"generated files differ: {sorted(set(fresh) ^ set(committed))}")
                return 1
            stale = [
                n
                for n in fresh
                if not filecmp.cmp(out / PACKAGE / n, PROTOS / PACKAGE / n, shallow=False)
            ]
            if stale:
                print(f"generated code is stale, run protos/tools/generate.py: {stale}")
                return 1
            if (PROTOS / "README.md").read_text() != reference():
                print("protos/README.md is stale, run protos/tools/generate.py")
                return 1
            print("generated code and API reference are fresh")
            return 0
        for name in generated_files(PROTOS):
            (PROTOS / PACKAGE / name).unlink()
        for name in generated_files(out):
            shutil.copy2(out / PACKAGE / name, PROTOS / PACKAGE / name)
        (PROTOS / "README.md").write_text(reference())
    print(f"generated {PROTOS / PACKAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
