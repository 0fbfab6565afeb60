"""tests/installed_files.py finds files that two installed distributions both write."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from tests.installed_files import clashes, missing


def install(site: Path, name: str, *files: str) -> None:
    """A distribution as an installer leaves it: METADATA and a RECORD listing its files."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in record))
    for file in files:
        (site / file).parent.mkdir(parents=True, exist_ok=True)
        (site / file).write_text("")


def test_two_distributions_writing_one_file_clash(tmp_path: Path) -> None:
    install(tmp_path, "grpc-stubs", "grpc-stubs/__init__.pyi", "grpc_channelz-stubs/v1.pyi")
    install(tmp_path, "types-grpcio", "grpc-stubs/__init__.pyi", "grpc-stubs/aio.pyi")
    install(tmp_path, "types-protobuf", "google-stubs/protobuf/message.pyi")

    found = clashes(metadata.distributions(path=[str(tmp_path)]))

    assert found == {tmp_path / "grpc-stubs/__init__.pyi": ["grpc-stubs", "types-grpcio"]}


def test_scripts_outside_the_site_directory_count_too(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "site-packages"
    install(site, "one", "one.py", "../../bin/tool")
    install(site, "two", "two.py", "../../bin/tool")

    found = clashes(metadata.distributions(path=[str(site)]))

    assert found == {tmp_path / "bin" / "tool": ["one", "two"]}


def test_disjoint_distributions_and_one_found_twice_do_not_clash(tmp_path: Path) -> None:
    install(tmp_path, "grpc-stubs", "grpc-stubs/__init__.pyi")
    install(tmp_path, "types-protobuf", "google-stubs/protobuf/message.pyi")

    assert clashes(metadata.distributions(path=[str(tmp_path), str(tmp_path)])) == {}


def test_files_deleted_by_uninstalling_a_clashing_distribution_are_missing(
    tmp_path: Path,
) -> None:
    install(tmp_path, "grpc-stubs", "grpc-stubs/__init__.pyi", "grpc-stubs/py.typed")
    install(tmp_path, "types-protobuf", "google-stubs/protobuf/message.pyi")
    (tmp_path / "grpc-stubs/__init__.pyi").unlink()  # what removing types-grpcio did

    found = missing(metadata.distributions(path=[str(tmp_path)]))

    assert found == {"grpc-stubs": [tmp_path / "grpc-stubs/__init__.pyi"]}


def test_listed_bytecode_is_a_cache_not_a_missing_file(tmp_path: Path) -> None:
    install(tmp_path, "one", "one.py")
    info = tmp_path / "one-1.0.dist-info"
    with (info / "RECORD").open("a") as record:
        record.write("__pycache__/one.cpython-311.pyc,,\n")

    assert missing(metadata.distributions(path=[str(tmp_path)])) == {}


def test_this_environment_has_no_clash_and_no_missing_file() -> None:
    dists = list(metadata.distributions())
    assert clashes(dists) == {}
    assert missing(dists) == {}
