"""Splitting a job's raw output bytes into capped, decoded lines.

A job's output is read in chunks, never with ``readline()``: a line can be longer than any
buffer, a chunk can end in the middle of a line or of a UTF-8 sequence, and a line can end
with ``\\n``, ``\\r\\n`` or a lone ``\\r`` (progress bars). :class:`LineSplitter` keeps the
state between chunks and returns whole lines:

* line breaks are ``\\n``, ``\\r\\n`` and a lone ``\\r``; a ``\\r\\n`` split across two
  chunks is still one break;
* a line longer than ``max_line_bytes`` keeps its first ``max_line_bytes`` bytes (cut on a
  character boundary) followed by the marker ``…[truncated N bytes]``;
* invalid UTF-8 is decoded with U+FFFD, and so is NUL (PostgreSQL text cannot hold it);
* output that does not end with a line break is returned by :meth:`LineSplitter.flush`.

Lines come out whole, however the chunks cut them, which is what lets the output collector
mask secrets line by line (:mod:`batchyard.worker.output.masking`); the one place a line is cut on
purpose, the ``max_line_bytes`` cut, hands the kept text to ``on_cut`` first, so a secret
cut in two there loses its kept beginning too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

DEFAULT_MAX_LINE_BYTES = 16 * 1024
_REPLACEMENT = "\ufffd"


class Line(NamedTuple):
    """One decoded line and the number of bytes of it that were kept."""

    text: str
    size: int


def truncation_marker(dropped: int) -> str:
    """The visible marker appended to a line that lost ``dropped`` bytes."""
    return f"…[truncated {dropped} bytes]"


def _char_boundary(data: bytes | bytearray, limit: int) -> int:
    """The largest cut position <= ``limit`` that does not split a UTF-8 sequence."""
    if limit >= len(data):
        return len(data)
    cut = limit
    # Step back over continuation bytes (0b10xxxxxx), at most 3 of them.
    while cut > 0 and limit - cut < 3 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if (data[cut] & 0xC0) != 0x80 else limit


def decode_line(raw: bytes | bytearray) -> str:
    """Decodes one line of job output: invalid UTF-8 and NUL become U+FFFD."""
    text = raw.decode("utf-8", "replace")
    return text.replace("\x00", _REPLACEMENT) if "\x00" in text else text


class LineSplitter:
    """Turns a stream of byte chunks into lines; one instance per output stream."""

    def __init__(
        self,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        *,
        on_cut: Callable[[str], str] | None = None,
    ) -> None:
        """``on_cut`` rewrites the kept text of a line cut at ``max_line_bytes`` (before
        the marker is appended)."""
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max = max_line_bytes
        self._on_cut = on_cut
        self._buffer = bytearray()
        self._dropped = 0
        self._pending = False  # a line has started (possibly empty so far)
        self._skip_lf = False  # the previous chunk ended with "\r"

    def feed(self, data: bytes) -> list[Line]:
        """Adds a chunk and returns the lines it completed."""
        return [Line(text, size) for text, size in self.feed_pairs(data)]

    def feed_pairs(self, data: bytes) -> list[tuple[str, int]]:
        """:meth:`feed` as plain ``(text, size)`` pairs: the hot path (a job may print
        hundreds of thousands of lines a second, so no object is made per line)."""
        if self._skip_lf and data[:1] == b"\n":
            data = data[1:]
        self._skip_lf = False
        if not data:
            return []
        lines: list[tuple[str, int]] = []
        if data.isascii() and b"\r" not in data and b"\x00" not in data:
            # Plain ASCII lines: one decode and one split for the whole chunk.
            if self._pending:  # first the end of the line the last chunk began
                end = data.find(b"\n")
                if end < 0:
                    self._append(data)
                    return lines
                self._append(data[:end])
                lines.append(self._take())
                data = data[end + 1 :]
            texts = data.decode("ascii").split("\n")
            rest = texts.pop()  # after the last "\n" ("" when the chunk ends with one)
            if not texts or max(map(len, texts)) <= self._max:
                if rest:
                    self._append(data[len(data) - len(rest) :])
                lines += zip(texts, map(len, texts), strict=True)
                return lines

        for piece in data.splitlines(keepends=True):
            last = piece[-1:]
            if last in (b"\n", b"\r"):
                body = piece[:-2] if piece.endswith(b"\r\n") else piece[:-1]
                if not self._pending and len(body) <= self._max:
                    lines.append((decode_line(body), len(body)))  # the common case
                    continue
                self._append(body)
                lines.append(self._take())
            else:
                self._append(piece)
        self._skip_lf = data.endswith(b"\r")
        return lines

    def flush(self) -> Line | None:
        """Returns the last line if the output did not end with a line break."""
        self._skip_lf = False
        if not self._pending:
            return None
        return self._take()

    def _append(self, piece: bytes) -> None:
        self._pending = True
        if self._dropped:
            self._dropped += len(piece)
            return
        room = self._max - len(self._buffer)
        if len(piece) <= room:
            self._buffer += piece
            return
        cut = _char_boundary(piece, room)
        self._buffer += piece[:cut]
        self._dropped = len(piece) - cut

    def _take(self) -> Line:
        size = len(self._buffer)
        text = decode_line(self._buffer)
        if self._dropped:
            if self._on_cut is not None:
                text = self._on_cut(text)
            text += truncation_marker(self._dropped)
        self._buffer = bytearray()
        self._dropped = 0
        self._pending = False
        return Line(text, size)
