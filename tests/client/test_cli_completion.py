"""`batchyard completion bash|zsh|fish`: the scripts complete the real command tree (bash
always; zsh and fish where they are installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from batchyard.client.cli.completion import script, walk
from batchyard.client.cli.main import build_parser, main

BASH_DRIVER = """
source "$1"
shift
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_batchyard
printf '%s\\n' "${COMPREPLY[@]}"
"""
ZSH_DRIVER = """
compdef() { :; }
source "$1"
shift
compadd() { shift; print -l -- "$@"; }
_describe() { print -l -- ${(P)4%%:*}; }
_files() { print -- FILES; }
words=("$@"); CURRENT=$#
_batchyard
"""


def bash(tmp_path, *words: str) -> list[str]:
    path = tmp_path / "batchyard.bash"
    path.write_text(script("bash", build_parser()))
    done = subprocess.run(
        ["bash", "-c", BASH_DRIVER, "driver", str(path), *words],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    return done.stdout.split()


def test_the_command_prints_a_script(capsys) -> None:
    assert main(["completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# bash completion for batchyard")
    assert "complete -o default -F _batchyard batchyard" in out
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef batchyard")
    assert main(["completion", "fish"]) == 0
    assert "complete -c batchyard" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["completion", "tcsh"])


def test_the_tree_has_every_command() -> None:
    paths = {c.path for c in walk(build_parser())}
    assert {"runs submit", "logs", "results download", "completion", "tokens create"} <= paths
    submit = next(c for c in walk(build_parser()) if c.path == "runs submit")
    assert submit.choices["-o"] == ["table", "json", "yaml"]
    assert submit.files["--payload-file"] == "file"


def test_bash_completes_commands_flags_and_choices(tmp_path) -> None:
    (tmp_path / "greet.yaml").write_text("name: greet\n")
    assert bash(tmp_path, "batchyard", "ru") == ["runs"]
    assert bash(tmp_path, "batchyard", "runs", "") == [
        "submit",
        "get",
        "list",
        "watch",
        "cancel",
        "delete",
    ]
    assert bash(tmp_path, "batchyard", "runs", "submit", "--wa") == ["--wait", "--wait-timeout"]
    assert bash(tmp_path, "batchyard", "runs", "list", "-o", "") == ["table", "json", "yaml"]
    assert bash(tmp_path, "batchyard", "runs", "list", "--status", "pending", "-o", "j") == ["json"]
    assert bash(tmp_path, "batchyard", "logs", "RUN", "--level", "w") == ["warning"]
    assert bash(tmp_path, "batchyard", "definitions", "create", "-f", "gr") == ["greet.yaml"]
    assert bash(tmp_path, "batchyard", "completion", "") == ["bash", "zsh", "fish"]
    # -f is --follow in `logs` (no value): the word after it is not its value
    assert bash(tmp_path, "batchyard", "logs", "RUN", "-f", "--lev") == ["--level"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed here")
def test_zsh_completes_commands_flags_and_choices(tmp_path) -> None:
    path = tmp_path / "_batchyard"
    path.write_text(script("zsh", build_parser()))

    def zsh(*words: str) -> list[str]:
        done = subprocess.run(
            ["zsh", "-c", ZSH_DRIVER, "driver", str(path), *words],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split()

    assert "runs" in zsh("batchyard", "ru")
    assert zsh("batchyard", "runs", "list", "-o", "") == ["table", "json", "yaml"]
    assert zsh("batchyard", "definitions", "create", "-f", "") == ["FILES"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed here")
def test_fish_completes_commands_flags_and_choices(tmp_path) -> None:
    path = tmp_path / "batchyard.fish"
    path.write_text(script("fish", build_parser()))

    def fish(line: str) -> list[str]:
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stderr == ""
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert fish("batchyard runs su") == ["submit"]
    assert fish("batchyard runs list -o ") == ["json", "table", "yaml"]
    assert fish("batchyard logs RUN --level w") == ["warning"]


def test_the_documented_bash_install_works_on_a_fresh_home(tmp_path) -> None:
    """The install lines of `batchyard completion --help` (and client/README.md), as a
    new user types them: the completions folder does not exist yet."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from batchyard.client.cli.completion import EPILOG

    lines = [line.strip() for line in EPILOG.splitlines()]
    start = lines.index("examples:")
    bash = [line.split("#")[0].strip() for line in lines[start + 1 :] if "bash" in line]
    bin_dir = str(Path(sys.executable).parent)
    env = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", "-ec", "\n".join(bash)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".local/share/bash-completion/completions/batchyard"
    assert "complete" in script.read_text()
    assert os.path.getsize(script) > 100
