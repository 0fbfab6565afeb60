"""Masking a job's secrets in everything the worker stores or logs about the job.

A job's secret values are its ``secret_env`` values, its GIT source's ``access_token``, and
its SQL target's ``dsn`` with the password inside it. :class:`Masker` replaces each of them
with ``***`` — and also the forms a job is likely to print them in:

* the value itself, and each line of a multi-line value (a PEM key, say);
* its base64, standard and URL-safe alphabets, at each of the 3 alignments a value can have
  inside a longer base64 stream (the characters that depend only on the secret's bytes);
* its percent-encoding (``quote`` with and without ``/`` safe, ``quote_plus``; upper- and
  lower-case hex);
* its JSON string escaping and its Python ``repr`` escaping (structured logs, tracebacks).

A value shorter than :data:`MIN_SECRET_CHARS` characters is ignored: masking ``"a"`` or
``"42"`` everywhere would destroy the log and hide nothing worth hiding. A job with no
secret (of that length) gets no masker at all, so its output costs nothing extra.

Finding is one pass per form with ``str``'s own search (it skips ahead by up to a needle's
length: faster than a regex up to some dozens of forms, measured with
``tests/bench/masking.py``), or, past :data:`_FEW_FORMS` forms, one compiled regex built as
a trie of them all (one pass whatever their number). Output is searched a whole chunk of
lines at a time; only a chunk with a hit is rewritten, every occurrence of every form (the
union of overlapping ones) becoming one ``***``.

Lines are masked once whole, after the line splitter joined the chunks they arrived in, so
a secret split across two reads of the pipe is still masked; a line cut for being too long
also loses a trailing partial secret (:meth:`Masker.mask_cut`). Out of scope: a secret
printed across a line break (split by ``\n`` or ``\r``, or base64 wrapped over two lines
by ``base64``'s 76 columns), and transformations other than the ones above (hex, reversed,
compressed, ...): masking is defence in depth, not a sandbox.

The worker's process log masks the same values: :func:`use_in_process_log` marks the
current task (and what it starts) as working for the job, and :func:`mask_log_event`, a
processor of the process log, masks every event before and after it is rendered.
"""

from __future__ import annotations

import base64
import contextvars
import json
import os
import re
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit

from batchyard.v1 import job_pb2

MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not masked (documented for users with the secrets)."""
_FEW_FORMS = 128
"""Up to this many forms a text is searched form by form; past it, with one trie regex."""

_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")
_KEYWORD_PASSWORD = re.compile(r"""(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)""")
_PROCESS_LOG: contextvars.ContextVar[Masker | None] = contextvars.ContextVar(
    "batchyard_process_log_masker", default=None
)


_AWS_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def job_secrets(config: job_pb2.JobConfig) -> list[str]:
    """Every secret value of the job (short ones included; :class:`Masker` drops them)."""
    values = list(config.secret_env.values())
    if config.HasField("source") and config.source.WhichOneof("kind") == "git":
        values.append(config.source.git.access_token)
    if config.HasField("sql_target"):
        dsn = config.sql_target.dsn
        values += [dsn, *dsn_passwords(dsn)]
    if config.type == job_pb2.JOB_TYPE_INGEST:  # its runner holds the worker's S3 secrets
        values += [os.environ.get(name, "") for name in _AWS_SECRETS]
    return [value for value in values if value]


def dsn_passwords(dsn: str) -> list[str]:
    """The password(s) in a PostgreSQL DSN, URI or ``key=value`` form, as written and
    decoded (a DSN that cannot be parsed gives none: the whole DSN is masked anyway)."""
    found: list[str] = []
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
            password = parts.password
            query = parse_qs(parts.query)
        except ValueError:
            return found
        if password:
            found += [password, unquote(password)]
        found += query.get("password", [])
    else:
        for match in _KEYWORD_PASSWORD.finditer(dsn):
            raw = match.group(1)
            if raw.startswith("'"):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            found.append(raw)
    return found


def encoded_forms(secret: str) -> set[str]:
    """The secret and the encoded forms of it that are masked (see the module docstring)."""
    if len(secret) < MIN_SECRET_CHARS:
        return set()
    pieces = [secret]
    if "\n" in secret or "\r" in secret:
        pieces += [line for line in re.split(r"\r\n|\r|\n", secret) if line]
    forms: set[str] = set()
    for piece in pieces:
        if "\n" not in piece and "\r" not in piece:
            forms.add(piece)
            forms.update(_url_forms(piece))
        forms.update(_escaped_forms(piece))
        forms.update(_base64_forms(piece.encode()))
    return {
        form
        for form in forms
        if len(form) >= MIN_SECRET_CHARS and "\n" not in form and "\r" not in form
    }


def _url_forms(piece: str) -> set[str]:
    forms = {quote(piece, safe=""), quote(piece), quote_plus(piece)}
    lower = {_PERCENT_HEX.sub(lambda m: m.group(0).lower(), form) for form in forms}
    return forms | lower


def _escaped_forms(piece: str) -> set[str]:
    return {
        json.dumps(piece)[1:-1],
        json.dumps(piece, ensure_ascii=False)[1:-1],
        repr(piece)[1:-1],
    }


def _base64_forms(data: bytes) -> set[str]:
    """For each offset of ``data`` in a base64 stream (0, 1, 2 bytes after a 3-byte group
    boundary), the characters that encode only ``data``'s bits, in both alphabets."""
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
        first = -(-offset * 8 // 6)  # the first character with no bit of the bytes before
        last = (offset + len(data)) * 8 // 6  # past the last character wholly inside
        core = encoded[first:last]
        forms.add(core)
        forms.add(core.replace("+", "-").replace("/", "_"))
        if offset == 0:
            forms.add(encoded)  # the whole padded encoding: the usual `base64` output
            forms.add(base64.urlsafe_b64encode(data).decode("ascii"))
    return forms


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of ``words`` (longest first at a position), as a trie."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = True
    return _trie_node(root)


def _trie_node(node: dict[str, Any]) -> str:
    branches = []
    for char, child in sorted(node.items()):
        if char == "":
            continue
        literal = [char]
        while len(child) == 1 and "" not in child:  # a chain without branches: one literal
            (char, child), *_ = child.items()
            literal.append(char)
        branches.append(re.escape("".join(literal)) + _trie_node(child))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:
        return f"(?:{body})?"
    return body


class Masker:
    """Replaces a job's secret values and their encoded forms with ``***``."""

    def __init__(self, forms: Iterable[str]) -> None:
        self.forms = frozenset(forms)
        if not self.forms:
            raise ValueError("a Masker needs at least one form to mask")
        self._needles = tuple(sorted(self.forms, key=len, reverse=True))
        self._found: Callable[[str], object]
        if len(self._needles) <= _FEW_FORMS:
            # Up to some dozens of forms, str's own search (it skips ahead by up to a
            # needle's length) beats the regex engine's pass over every character; a form
            # holding another is redundant for finding out whether a text has a secret.
            needles = tuple(
                form
                for form in self._needles
                if not any(other in form for other in self.forms if other != form)
            )
            self._found = lambda text: any(needle in text for needle in needles)
        else:
            self._found = re.compile(_trie_pattern(self._needles)).search

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Masker | None:
        """A masker of these values, or None when none is long enough to be masked."""
        forms: set[str] = set()
        for secret in secrets:
            forms |= encoded_forms(secret)
        return cls(forms) if forms else None

    @classmethod
    def for_job(cls, config: job_pb2.JobConfig) -> Masker | None:
        """The masker of a job's secrets (None: nothing to mask)."""
        return cls.of(job_secrets(config))

    def with_secrets(self, secrets: Iterable[str]) -> Masker:
        """This masker plus more values."""
        extra: set[str] = set()
        for secret in secrets:
            extra |= encoded_forms(secret)
        return self if extra <= self.forms else Masker(self.forms | extra)

    def mask(self, text: str) -> str:
        """``text`` with every secret form replaced by ``***``."""
        return self._rewrite(text) if self._found(text) else text

    def mask_pairs(self, lines: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Masks ``(text, size)`` lines (sizes kept): one search for the whole batch."""
        if len(lines) == 1:
            text, size = lines[0]
            return [(self._rewrite(text), size)] if self._found(text) else lines
        joined = "\n".join([text for text, _ in lines])
        if not self._found(joined):
            return lines  # the common case: no secret in the chunk
        # No form holds a line break and neither does the mask: the lines stay apart.
        masked = self._rewrite(joined).split("\n")
        return list(zip(masked, [size for _, size in lines], strict=True))

    def mask_cut(self, text: str) -> str:
        """A line cut short: masked, and a secret's beginning at its very end masked too."""
        text = self.mask(text)
        cut = len(text)
        for form in self._needles:
            start = max(len(text) - len(form) + 1, 0)
            while (start := text.find(form[0], start, cut)) >= 0:
                if form.startswith(text[start:]):
                    cut = start  # the earliest start wins: the longest partial secret
                    break
                start += 1
        return text if cut == len(text) else text[:cut] + MASK

    def _rewrite(self, text: str) -> str:
        """Masks every occurrence of every form, overlapping ones included (the union of
        their spans becomes one ``***``): no piece of a secret stays visible."""
        spans: list[tuple[int, int]] = []
        for needle in self._needles:
            start = text.find(needle)
            while start >= 0:
                spans.append((start, start + len(needle)))
                start = text.find(needle, start + 1)
        if not spans:
            return text
        spans.sort()
        parts: list[str] = []
        kept = 0  # text[:kept] is handled
        begin, end = spans[0]
        for span_begin, span_end in spans[1:]:
            if span_begin <= end:
                end = max(end, span_end)
                continue
            parts += (text[kept:begin], MASK)
            kept, (begin, end) = end, (span_begin, span_end)
        parts += (text[kept:begin], MASK, text[end:])
        return "".join(parts)


def use_in_process_log(masker: Masker | None) -> None:
    """The process log masks this masker's values in whatever the current task (and the
    tasks and threads it starts from now on) logs."""
    _PROCESS_LOG.set(masker)


def process_log_masker() -> Masker | None:
    """The masker :func:`use_in_process_log` set for the current context, if any."""
    return _PROCESS_LOG.get()


def mask_log_event(_logger: object, _method: str, event: Any) -> Any:
    """structlog processor: masks an event dict's strings (nested ones too) before it is
    rendered, and a rendered line after; does nothing outside an attempt's tasks."""
    masker = _PROCESS_LOG.get()
    return event if masker is None else _mask_value(masker, event)


def _mask_value(masker: Masker, value: Any) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, MutableMapping):
        for key, item in value.items():
            value[key] = _mask_value(masker, item)
        return value
    if type(value) in (list, tuple):  # not subclasses: a named tuple is left alone
        return type(value)(_mask_value(masker, item) for item in value)
    return value
