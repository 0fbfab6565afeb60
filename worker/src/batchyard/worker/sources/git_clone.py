"""GIT sources, the clone itself: a shallow clone of one commit, cached by commit on this worker.

``fetch_git`` (blocking; the execution runs it in a thread) resolves the reference with
``git ls-remote`` (a branch, a tag, a full ref name or a full commit id; the default branch
when empty), then copies the commit's tree from the worker's cache
(``<state>/git-cache/<key>``, keyed by repository URL and commit, the last
``CACHE_ENTRIES`` used kept) or clones it there first: ``git clone --depth 1 --branch`` for
branches and tags, ``git init`` + ``git fetch --depth 1 origin <sha>`` for anything else,
with a full fetch when the server refuses to serve a commit by id.

Security:

* the access token is handed to git only through ``GIT_ASKPASS`` (a helper script in the
  state directory printing ``BATCHYARD_GIT_TOKEN``, set only in git's environment): never on
  a command line, in a URL, in ``.git/config``, nor in a message (git's stderr is scrubbed);
* URLs with credentials or starting with ``-`` are refused; ``--`` precedes every URL;
* ``protocol.allow=never`` plus ``protocol.<name>.allow=always`` for the transports the
  operator enabled (``--git-protocols``); no hooks (``core.hooksPath=/dev/null``), no
  credential helpers, no system or global git configuration, no terminal prompts;
* submodules only when the source asks for them;
* every git command is bounded by the time left (its whole process group is killed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from batchyard.v1 import job_pb2
from batchyard.worker.sources.git_urls import display_url, protocol_of
from batchyard.worker.sources.port import SourceError
from batchyard.worker.trees import remove_tree

KNOWN_PROTOCOLS = ("https", "http", "ssh", "git", "file")
DEFAULT_PROTOCOLS = ("https", "ssh")
DEFAULT_GIT_TIMEOUT = 600.0
CACHE_ENTRIES = 20
TOKEN_VARIABLE = "BATCHYARD_GIT_TOKEN"  # noqa: S105 (a variable name)
USERNAME_VARIABLE = "BATCHYARD_GIT_USERNAME"
HOST_VARIABLE = "BATCHYARD_GIT_HOST"
_DEFAULT_TOKEN_USER = "x-access-token"  # noqa: S105 (a user name)
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_MAX_ERROR_CHARS = 1000
_STALE_SCRATCH = 24 * 3600.0
_ASKPASS = """#!/bin/sh
# Written by the batchyard worker: gives git the credentials of the attempt being fetched,
# the token only to the repository's own host (not to a submodule's or a redirect's).
case "$1" in
  Username*) printf '%s\\n' "${BATCHYARD_GIT_USERNAME}" ;;
  Password*"@${BATCHYARD_GIT_HOST}'"*|Password*"//${BATCHYARD_GIT_HOST}'"*)
    printf '%s\\n' "${BATCHYARD_GIT_TOKEN}" ;;
  *) echo ;;
esac
"""
_KEPT_GIT_VARIABLES = frozenset(
    ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH")
)
"""The operator's git variables kept (no GIT_DIR, GIT_CONFIG_*, GIT_TRACE_CURL and the like)."""
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class GitOptions:
    """The worker's settings for GIT sources."""

    state_dir: Path
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    timeout: float = DEFAULT_GIT_TIMEOUT
    """Seconds for the whole fetch (every git command of it)."""
    cache_entries: int = CACHE_ENTRIES

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "git-cache"

    @property
    def askpass(self) -> Path:
        return self.state_dir / "git-askpass"


@dataclass(frozen=True)
class GitCheckout:
    """A fetched source: its (resolved) root and the commit it holds."""

    root: Path
    commit: str
    cached: bool

    def describe(self, source: job_pb2.GitSource) -> str:
        reference = source.reference or "the default branch"
        how = "from the worker's cache" if self.cached else "cloned"
        return (
            f"source ready: git {display_url(source.repo_url)} at {reference} "
            f"(commit {self.commit[:12]}, {how})"
        )


def check_source(source: job_pb2.GitSource, protocols: tuple[str, ...]) -> None:
    """Refuses a URL or reference git should never see."""
    url = source.repo_url
    if not url:
        raise SourceError("the git source has no repo_url")
    if url.startswith("-"):
        raise SourceError("repo_url may not start with '-'")
    if any(c in url for c in "\x00\n\r"):
        raise SourceError("repo_url contains a control character")
    protocol = protocol_of(url)
    if protocol in ("http", "https"):
        try:
            parts = urlsplit(url)
        except ValueError:
            raise SourceError("repo_url is not a valid URL") from None
        if parts.password is not None or (source.access_token and parts.username):
            raise SourceError(
                "repo_url may not carry credentials: use the source's username and access_token"
            )
    if protocol not in protocols:
        enabled = ", ".join(protocols) or "none"
        raise SourceError(
            f"git transport {protocol!r} is not enabled on this worker (--git-protocols: {enabled})"
        )
    reference = source.reference
    if reference.startswith("-") or any(c in reference for c in "\x00\n\r "):
        raise SourceError(f"git reference {reference!r} is not valid")


def fetch_git(source: job_pb2.GitSource, dest: Path, options: GitOptions) -> GitCheckout:
    """Makes ``dest`` (which must not exist yet) a checkout of the source; SourceError if not."""
    check_source(source, options.protocols)
    git = _Git(source, options)
    commit, branch = git.resolve()
    options.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = options.cache_dir / _cache_key(source.repo_url, commit, source.submodules)
    if _copy_cached(entry, dest):
        return GitCheckout(dest.resolve(), commit, cached=True)
    scratch = options.cache_dir / f".tmp-{secrets.token_hex(8)}"
    try:
        if branch is not None:
            git.clone_branch(branch, scratch)
        else:
            git.fetch_commit(commit, scratch)
        actual = git.head(scratch)  # a branch may have moved since ls-remote
        if source.submodules:
            git.update_submodules(scratch)
        entry = options.cache_dir / _cache_key(source.repo_url, actual, source.submodules)
        _store(scratch, entry, options.cache_entries)
    finally:
        remove_tree(scratch)
    if not _copy_cached(entry, dest):
        raise SourceError("the fetched commit vanished from the worker's cache")
    return GitCheckout(dest.resolve(), actual, cached=False)


class _Git:
    """Runs git for one source, with its environment, options and deadline."""

    def __init__(self, source: job_pb2.GitSource, options: GitOptions) -> None:
        self._source = source
        self._url = source.repo_url
        self._token = source.access_token
        self._deadline = time.monotonic() + options.timeout
        self._timeout = options.timeout
        self._state_dir = str(options.state_dir)
        self._config = [
            "-c",
            "protocol.allow=never",
            *(arg for p in options.protocols for arg in ("-c", f"protocol.{p}.allow=always")),
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "credential.helper=",
            "-c",
            "transfer.credentialsInUrl=die",
            "-c",
            "advice.detachedHead=false",
            "-c",
            "init.defaultBranch=main",
        ]
        self._env = _git_environment(source, _askpass(options))

    def resolve(self) -> tuple[str, str | None]:
        """The commit to fetch, and the branch or tag name to clone it by (None: by id)."""
        reference = self._source.reference
        what = "listing the references of"
        listing = self._run(["ls-remote", "--", self._url], what=what)
        refs: dict[str, str] = {}
        for line in listing.splitlines():
            sha, _, name = line.partition("\t")
            refs[name] = sha
        if not reference:
            if "HEAD" not in refs:
                raise SourceError(
                    f"git repository {display_url(self._url)} has no default branch (empty?)"
                )
            return refs["HEAD"], None
        for prefix in ("refs/heads/", "refs/tags/"):
            name = reference if reference.startswith(prefix) else prefix + reference
            peeled = refs.get(name + "^{}") or refs.get(name)
            if peeled is not None:
                return peeled, name.removeprefix(prefix)
        if reference in refs:  # another full ref name (refs/pull/1/head, say)
            return refs[reference], None
        if _COMMIT.fullmatch(reference.lower()):
            return reference.lower(), None
        raise SourceError(
            f"git reference {reference!r} not found in {display_url(self._url)} "
            "(a branch, a tag or a full commit id)"
        )

    def clone_branch(self, branch: str, into: Path) -> None:
        args = ["clone", "--quiet", "--depth", "1", "--no-tags", "--single-branch"]
        args += [f"--branch={branch}", "--no-recurse-submodules", "--", self._url, str(into)]
        self._run(args, what="cloning")

    def fetch_commit(self, commit: str, into: Path) -> None:
        self._run(["init", "--quiet", "--", str(into)], what="preparing a clone of")
        self._run(
            ["remote", "add", "origin", "--", self._url], what="preparing a clone of", cwd=into
        )
        try:
            self._run(
                ["fetch", "--quiet", "--depth", "1", "--no-tags", "origin", commit],
                what="fetching the commit from",
                cwd=into,
            )
        except SourceError:  # the server does not serve commits by id: fetch everything
            self._run(["fetch", "--quiet", "--tags", "origin"], what="fetching", cwd=into)
        if not self._succeeds(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=into):
            raise SourceError(f"git commit {commit} not found in {display_url(self._url)}")
        self._run(["checkout", "--quiet", "--detach", commit], what="checking out", cwd=into)

    def head(self, clone: Path) -> str:
        return self._run(["rev-parse", "HEAD"], what="reading the clone of", cwd=clone).strip()

    def update_submodules(self, clone: Path) -> None:
        self._run(
            ["submodule", "update", "--init", "--recursive", "--depth", "1"],
            what="fetching the submodules of",
            cwd=clone,
        )

    def _succeeds(self, args: list[str], *, cwd: Path) -> bool:
        try:
            self._run(args, what="reading", cwd=cwd)
        except SourceError:
            return False
        return True

    def _run(self, args: list[str], *, what: str, cwd: Path | None = None) -> str:
        remaining = self._deadline - time.monotonic()
        target = display_url(self._url)
        if remaining <= 0:
            raise SourceError(f"git timed out ({self._timeout:g}s) {what} {target}")
        process = subprocess.Popen(
            ["git", *self._config, *args],
            cwd=cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a timeout kills git's helpers (ssh, remote-https) too
        )
        try:
            stdout, stderr = process.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise SourceError(f"git timed out ({self._timeout:g}s) {what} {target}") from None
        except BaseException:
            _kill_group(process)
            raise
        if process.returncode != 0:
            detail = self._scrub(stderr.decode("utf-8", "replace"))
            raise SourceError(f"git failed {what} {target}: {detail or 'no error output'}")
        return stdout.decode("utf-8", "replace")

    def _scrub(self, text: str) -> str:
        """git's error output: token-free, short, and naming no directory of the worker."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        detail = "; ".join(lines).replace(self._state_dir, "<worker-state>")
        if self._token:
            for form in {self._token, quote(self._token, safe="")}:
                detail = detail.replace(form, "***")
        if len(detail) > _MAX_ERROR_CHARS:
            detail = "..." + detail[-_MAX_ERROR_CHARS:]
        return detail


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _git_environment(source: job_pb2.GitSource, askpass: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEPT_GIT_VARIABLES
    }
    for variable in (TOKEN_VARIABLE, USERNAME_VARIABLE, HOST_VARIABLE):
        env.pop(variable, None)
    if "GIT_SSH" not in env and "GIT_SSH_COMMAND" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS=str(askpass),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_PROTOCOL_FROM_USER="0",
        LC_ALL="C",
    )
    if protocol_of(source.repo_url) not in ("http", "https"):
        return env  # a token is for HTTPS only
    env[HOST_VARIABLE] = urlsplit(source.repo_url).netloc.rsplit("@", 1)[-1]
    if source.access_token:
        env[TOKEN_VARIABLE] = source.access_token
        env[USERNAME_VARIABLE] = source.username or _DEFAULT_TOKEN_USER
    elif source.username:
        env[USERNAME_VARIABLE] = source.username
    return env


def _askpass(options: GitOptions) -> Path:
    """The helper script (written once; it holds no secret, only reads the environment)."""
    path = options.askpass
    try:
        if path.read_text() == _ASKPASS:
            return path
    except OSError:
        pass
    options.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}-{secrets.token_hex(4)}")
    scratch.write_text(_ASKPASS)
    scratch.chmod(0o700)
    scratch.replace(path)
    return path


def _cache_key(url: str, commit: str, submodules: bool) -> str:
    digest = hashlib.sha256(f"{url}\x00{commit}\x00{int(submodules)}".encode()).hexdigest()
    return digest[:40]


def _copy_cached(entry: Path, dest: Path) -> bool:
    """Copies a cache entry to ``dest`` (marking it used); False when it is not cached."""
    with _cache_lock:  # eviction waits for copies to finish
        if not entry.is_dir():
            return False
        os.utime(entry)
        if dest.exists():
            remove_tree(dest)
        shutil.copytree(entry, dest, symlinks=True)
    return True


def _store(scratch: Path, entry: Path, keep: int) -> None:
    """Moves a fresh clone into the cache and evicts the least recently used entries."""
    with _cache_lock:
        if entry.exists():  # another attempt fetched the same commit meanwhile
            os.utime(entry)
        else:
            scratch.rename(entry)
        entries = [p for p in entry.parent.iterdir() if not p.name.startswith(".")]
        for stale in entry.parent.glob(".tmp-*"):  # left by a worker that died mid-clone
            if _mtime(stale) < time.time() - _STALE_SCRATCH:
                remove_tree(stale)
        entries.sort(key=_mtime, reverse=True)
        for old in entries[max(keep, 1) :]:
            remove_tree(old)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
