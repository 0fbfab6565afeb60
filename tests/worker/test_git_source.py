"""GIT sources with real git: file://, a git daemon and HTTP servers on 127.0.0.1.

The upstream repository made here has ``main`` (two commits: file.txt "one", then "two"),
an annotated tag ``v1`` on the first commit and a branch ``feature`` ("feature"). Its
``main.py`` prints file.txt, so each job shows which version it got.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.settings import SettingsError, add_arguments, settings_from_args
from batchyard.worker.sources import git_clone as git_source
from batchyard.worker.sources.catalog import SourceSettings
from batchyard.worker.sources.git_clone import GitOptions, fetch_git
from batchyard.worker.sources.port import SourceError
from tests.processes import free_port
from tests.worker.jobs import MemorySink, Result, run_job

CANARY = "canary-tok-3f9a1c77e2b54d0e"
MAIN_PY = (
    "import os, pathlib\n"
    "print((pathlib.Path(__file__).parent / 'file.txt').read_text().strip())\n"
    "print('env has token:', any('canary' in v for v in os.environ.values()))\n"
)


def git(*args: str, cwd: Path) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass(frozen=True)
class Upstream:
    path: Path
    first: str
    second: str

    @property
    def url(self) -> str:
        return self.path.as_uri()


def _commit(repo: Path, text: str) -> str:
    (repo / "file.txt").write_text(text + "\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", text, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = tmp_path / "repos" / "upstream"
    repo.mkdir(parents=True)
    git("init", "-q", "--initial-branch=main", cwd=repo)
    (repo / "main.py").write_text(MAIN_PY)
    first = _commit(repo, "one")
    git("tag", "-a", "v1", "-m", "version 1", cwd=repo)
    git("checkout", "-q", "-b", "feature", cwd=repo)
    _commit(repo, "feature")
    git("checkout", "-q", "main", cwd=repo)
    second = _commit(repo, "two")
    return Upstream(repo, first, second)


@pytest.fixture
def git_options(options: ExecutionOptions) -> ExecutionOptions:
    sources = SourceSettings(git_protocols=("file", "git", "http"), git_timeout=30.0)
    return replace(options, sources=sources)


def git_job(
    url: str, reference: str = "", *, username: str = "", token: str = ""
) -> job_pb2.JobConfig:
    source = job_pb2.GitSource(
        repo_url=url, reference=reference, username=username, access_token=token
    )
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_PYTHON,
        source=job_pb2.Source(git=source),
        source_location="main.py",
    )


def assert_unavailable(result: Result, fragment: str) -> None:
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    assert fragment in result.outcome.message, result.outcome.message
    assert any(fragment in line for line in result.sink.system())
    assert not any(line.startswith("starting") for line in result.sink.system())


def printed(result: Result) -> str:
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    return result.sink.lines_of("stdout")[0]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("", "two"),
        ("main", "two"),
        ("feature", "feature"),
        ("refs/heads/feature", "feature"),
        ("v1", "one"),
        ("first", "one"),
        ("second", "two"),
    ],
)
async def test_clone_at_reference(
    git_options: ExecutionOptions, upstream: Upstream, reference: str, expected: str
) -> None:
    reference = {"first": upstream.first, "second": upstream.second}.get(reference, reference)
    result = await run_job(git_job(upstream.url, reference), git_options)
    assert printed(result) == expected
    ready = [line for line in result.sink.system() if line.startswith("source ready: git")]
    assert len(ready) == 1
    assert "cloned" in ready[0]


async def test_clone_is_shallow(git_options: ExecutionOptions, upstream: Upstream) -> None:
    (upstream.path / "count.sh").write_text("#!/bin/sh\ngit -C source rev-list --count HEAD\n")
    (upstream.path / "count.sh").chmod(0o755)  # git keeps the mode
    git("add", "-A", cwd=upstream.path)
    git("commit", "-q", "-m", "count", cwd=upstream.path)
    shell = git_job(upstream.url, "main")
    shell.type = job_pb2.JOB_TYPE_SHELL
    shell.source_location = "count.sh"
    result = await run_job(shell, git_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == ["1"]


async def test_wrong_reference(git_options: ExecutionOptions, upstream: Upstream) -> None:
    result = await run_job(git_job(upstream.url, "no-such-branch"), git_options)
    assert_unavailable(result, "git reference 'no-such-branch' not found")


async def test_unknown_commit(git_options: ExecutionOptions, upstream: Upstream) -> None:
    result = await run_job(git_job(upstream.url, "ab" * 20), git_options)
    assert_unavailable(result, f"git commit {'ab' * 20} not found")


async def test_missing_repository(git_options: ExecutionOptions, tmp_path: Path) -> None:
    url = (tmp_path / "nowhere").as_uri()
    result = await run_job(git_job(url), git_options)
    assert_unavailable(result, f"git failed listing the references of {url}")


async def test_file_transport_refused_unless_enabled(
    options: ExecutionOptions, upstream: Upstream
) -> None:
    result = await run_job(git_job(upstream.url), options)  # default: https, ssh
    assert_unavailable(result, "git transport 'file' is not enabled on this worker")
    local = await run_job(git_job(str(upstream.path)), options)  # a plain path is file too
    assert_unavailable(local, "git transport 'file' is not enabled")


def test_transport_refused_by_git_itself(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """protocol.allow=never holds even where our own URL check is bypassed."""
    options = GitOptions(state_dir=tmp_path / "state", protocols=("https",))
    monkeypatch.setattr(git_source, "check_source", lambda *_: None)
    with pytest.raises(SourceError, match="transport 'file' not allowed"):
        fetch_git(job_pb2.GitSource(repo_url=upstream.url), tmp_path / "dest", options)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("--upload-pack=touch /tmp/pwned", "may not start with '-'"),
        ("-oProxyCommand=x", "may not start with '-'"),
        ("https://user:secret@example.com/r.git", "may not carry credentials"),
        ("ext::sh -c touch% /tmp/pwned", "git transport 'ext' is not enabled"),
        ("", "has no repo_url"),
    ],
)
async def test_dangerous_urls_are_refused(
    git_options: ExecutionOptions, url: str, fragment: str
) -> None:
    result = await run_job(git_job(url), git_options)
    assert_unavailable(result, fragment)
    assert "secret" not in result.outcome.message


async def test_reference_starting_with_dash_is_refused(
    git_options: ExecutionOptions, upstream: Upstream
) -> None:
    result = await run_job(git_job(upstream.url, "--upload-pack=x"), git_options)
    assert_unavailable(result, "is not valid")


async def test_second_attempt_of_a_commit_uses_the_cache(
    git_options: ExecutionOptions, upstream: Upstream
) -> None:
    first = await run_job(git_job(upstream.url, "v1"), git_options, attempt=1)
    assert printed(first) == "one"
    cache = git_options.state_dir / "git-cache"
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    (entry / "file.txt").write_text("from the cache\n")  # proves the copy, not a clone
    second = await run_job(git_job(upstream.url, upstream.first), git_options, attempt=2)
    assert printed(second) == "from the cache"
    assert any("from the worker's cache" in line for line in second.sink.system())
    # a new commit on the branch is a new cache entry, not the old one
    third = await run_job(git_job(upstream.url, "main"), git_options, attempt=3)
    assert printed(third) == "two"
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2


def test_cache_keeps_the_most_recently_used_commits(upstream: Upstream, tmp_path: Path) -> None:
    options = GitOptions(state_dir=tmp_path / "state", protocols=("file",), cache_entries=2)
    for n, reference in enumerate(["v1", "feature", "main", "v1"]):
        checkout = fetch_git(
            job_pb2.GitSource(repo_url=upstream.url, reference=reference),
            tmp_path / f"dest-{n}",
            options,
        )
        time.sleep(0.01)  # distinct mtimes
        assert checkout.cached is False  # v1 was evicted by the time it came back
    entries = [p for p in options.cache_dir.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 2


def _everything_under(root: Path) -> Iterator[tuple[Path, bytes]]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path, path.read_bytes()
        yield path, str(path).encode()


async def _run_keeping_dir(
    config: job_pb2.JobConfig, options: ExecutionOptions
) -> tuple[Result, list[Path]]:
    """Runs one attempt; returns the paths (before removal) whose name or bytes hold the canary."""
    sink = MemorySink()
    async with Execution(AttemptSpec("run-tok", 1, config), options, sink=sink) as execution:
        outcome = await execution.run()
        root = execution.paths.root
        leaks = [p for p, data in _everything_under(options.state_dir) if CANARY.encode() in data]
        result = Result(outcome, sink, root)
    return result, leaks


def _assert_no_canary(result: Result, leaks: list[Path]) -> None:
    assert leaks == []
    assert CANARY not in result.outcome.message
    assert all(CANARY not in record.message for record in result.sink.records)


async def test_token_never_written_on_a_file_clone(
    git_options: ExecutionOptions, upstream: Upstream
) -> None:
    config = git_job(upstream.url, "main", username="alice", token=CANARY)
    result, leaks = await _run_keeping_dir(config, git_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == ["two", "env has token: False"]
    _assert_no_canary(result, leaks)


async def test_token_never_written_when_the_server_is_unreachable(
    git_options: ExecutionOptions,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = replace(git_options, sources=replace(git_options.sources, git_protocols=("https",)))
    url = f"https://127.0.0.1:{port}/repo.git"
    result, leaks = await _run_keeping_dir(git_job(url, username="bob", token=CANARY), options)
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    assert f"git failed listing the references of {url}" in result.outcome.message
    _assert_no_canary(result, leaks)


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Asks for Basic credentials, remembers what it got, and refuses every request."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_token_reaches_the_server_through_askpass_only(
    git_options: ExecutionOptions,
) -> None:
    _Refusing.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/repo.git"
        config = git_job(url, "main", username="carol", token=CANARY)
        result, leaks = await _run_keeping_dir(config, git_options)
    finally:
        server.shutdown()
        server.server_close()
    expected = "Basic " + base64.b64encode(f"carol:{CANARY}".encode()).decode()
    assert expected in _Refusing.seen  # git got the token from the askpass helper
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    assert "Authentication failed" in result.outcome.message
    _assert_no_canary(result, leaks)


async def test_a_hanging_server_times_out(git_options: ExecutionOptions) -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/repo.git"
        options = replace(git_options, sources=replace(git_options.sources, git_timeout=1.0))
        started = time.monotonic()
        result = await run_job(git_job(url), options)
    assert time.monotonic() - started < 10
    assert_unavailable(result, f"git timed out (1s) listing the references of {url}")


@pytest.fixture
def daemon(upstream: Upstream) -> Iterator[str]:
    """``git daemon`` serving the upstream's parent directory; yields the repository URL."""
    probe = subprocess.run(["git", "daemon", "--help"], capture_output=True, check=False)
    if probe.returncode != 0 or shutil.which("git") is None:
        pytest.skip("git daemon is not installed")
    base = upstream.path.parent
    port = free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--informative-errors",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("git daemon did not start")
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/upstream"
    finally:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.mark.parametrize(("reference", "expected"), [("v1", "one"), ("", "two"), ("first", "one")])
async def test_clone_from_a_git_daemon(
    git_options: ExecutionOptions,
    upstream: Upstream,
    daemon: str,
    reference: str,
    expected: str,
) -> None:
    reference = upstream.first if reference == "first" else reference
    result = await run_job(git_job(daemon, reference), git_options)
    assert printed(result) == expected


async def test_git_daemon_missing_repository(git_options: ExecutionOptions, daemon: str) -> None:
    url = daemon.rsplit("/", 1)[0] + "/missing"
    result = await run_job(git_job(url), git_options)
    assert_unavailable(result, f"git failed listing the references of {url}")


def parse(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, ...]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from_args(parser.parse_args(argv), env or {"PATH": "/usr/bin:/bin"})
    return settings.execution.sources.git_protocols


def test_git_protocols_setting() -> None:
    assert parse([]) == ("https", "ssh")
    assert parse(["--git-protocols", "file, https"]) == ("file", "https")
    assert parse([], {"BATCHYARD_GIT_PROTOCOLS": "FILE", "PATH": "/bin"}) == ("file",)
    with pytest.raises(
        SettingsError, match="--git-protocols: must be one of https, http, ssh, git, file: 'ext'"
    ):
        parse(["--git-protocols", "https,ext"])
    with pytest.raises(SettingsError, match="BATCHYARD_GIT_PROTOCOLS: needs at least 1 item"):
        parse([], {"BATCHYARD_GIT_PROTOCOLS": ",", "PATH": "/bin"})


def test_askpass_gives_the_token_only_to_the_repository_host(tmp_path: Path) -> None:
    options = GitOptions(state_dir=tmp_path / "state", protocols=("https",))
    source = job_pb2.GitSource(
        repo_url="https://git.example.com:8443/r.git", username="dave", access_token=CANARY
    )
    env = git_source._git_environment(source, git_source._askpass(options))

    def ask(prompt: str) -> str:
        done = subprocess.run(
            [env["GIT_ASKPASS"], prompt], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert ask("Username for 'https://git.example.com:8443': ") == "dave"
    assert ask("Password for 'https://dave@git.example.com:8443': ") == CANARY
    assert ask("Password for 'https://dave@evil.example.com': ") == ""
    assert ask("Password for 'https://git.example.com:8443.evil.com': ") == ""
    assert CANARY not in options.askpass.read_text()


async def test_submodules_only_when_asked(
    git_options: ExecutionOptions, upstream: Upstream, tmp_path: Path
) -> None:
    sub = tmp_path / "repos" / "sub"
    sub.mkdir()
    git("init", "-q", "--initial-branch=main", cwd=sub)
    (sub / "sub.txt").write_text("from the submodule\n")
    git("add", "-A", cwd=sub)
    git("commit", "-q", "-m", "sub", cwd=sub)
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", sub.as_uri(), "sub",
        cwd=upstream.path)  # fmt: skip
    git("commit", "-q", "-m", "with a submodule", cwd=upstream.path)
    show = "import pathlib; p = pathlib.Path(__file__).parent / 'sub' / 'sub.txt'\n"
    show += "print(p.read_text().strip() if p.exists() else 'no submodule')\n"
    (upstream.path / "show.py").write_text(show)
    git("add", "-A", cwd=upstream.path)
    git("commit", "-q", "-m", "show", cwd=upstream.path)
    config = git_job(upstream.url, "main")
    config.source_location = "show.py"
    without = await run_job(config, git_options, attempt=1)
    assert printed(without) == "no submodule"
    config.source.git.submodules = True
    with_submodules = await run_job(config, git_options, attempt=2)
    assert printed(with_submodules) == "from the submodule"
