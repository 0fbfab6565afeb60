"""One grammar for sizes and one for durations, with one error text for each.

Sizes: a whole number of bytes, or a number with a unit — decimal (kB, MB, GB, TB; k, M,
G, T) or binary (KiB, MiB, GiB, TiB) — case-insensitive, ``_`` allowed between digits:
``4194304``, ``16KiB``, ``1.5MiB``, ``2GB``. Durations: seconds as a plain number, or
numbers with units ms, s, m, h, d, which may be chained: ``90``, ``90s``, ``1.5m``,
``1h30m``, ``250ms`` (``600s`` is also what protobuf JSON writes).
"""

from __future__ import annotations

import math
import re

SIZE_EXAMPLES = "e.g. 4194304, 16KiB, 1.5MiB, 2GiB"
DURATION_EXAMPLES = "e.g. 90, 90s, 1.5m, 1h30m, 250ms"

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_SIZE = re.compile(rf"({_NUMBER})\s*([a-z]*)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{p: 1000**i for i, p in enumerate(("k", "m", "g", "t"), start=1)},
    **{p + "b": 1000**i for i, p in enumerate(("k", "m", "g", "t"), start=1)},
    **{p + "ib": 1024**i for i, p in enumerate(("k", "m", "g", "t"), start=1)},
}
_DURATION_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_size(raw: str) -> int:
    """Bytes in ``raw``; ValueError (saying what is wrong, with examples) otherwise."""
    text = raw.strip().replace("_", "").lower()
    match = _SIZE.fullmatch(text)
    unit = _SIZE_UNITS.get(match.group(2)) if match else None
    if match is None or unit is None:
        raise ValueError(f"not a size: {raw!r} ({SIZE_EXAMPLES})")
    exact = float(match.group(1)) * unit
    if not math.isfinite(exact) or exact != math.floor(exact):
        raise ValueError(f"not a whole number of bytes: {raw!r} ({SIZE_EXAMPLES})")
    return int(exact)


def format_size(value: int) -> str:
    """The shortest exact spelling: 8MiB, 16KiB, 2GB, 1000."""
    if value > 0:
        for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value % scale == 0:
                return f"{value // scale}{unit}"
        for unit, scale in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2)):
            if value % scale == 0:
                return f"{value // scale}{unit}"
    return str(value)


def parse_duration(raw: str) -> float:
    """Seconds in ``raw`` (negative when it starts with ``-``); ValueError otherwise."""
    text = raw.strip().replace("_", "").lower()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.removeprefix("-").removeprefix("+")
    try:
        seconds = float(body) if body and _looks_numeric(body) else _parse_units(body)
    except ValueError:
        raise ValueError(f"not a duration: {raw!r} ({DURATION_EXAMPLES})") from None
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {raw!r} ({DURATION_EXAMPLES})")
    return sign * seconds


def format_duration(seconds: float) -> str:
    """A spelling `parse_duration` reads back: 30s, 5m, 1h30m, 0.25s, 2d."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds != int(seconds) or seconds < 60:
        return _plain(seconds) + "s"
    whole = int(seconds)
    parts = []
    for unit, scale in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, scale)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _plain(value: float) -> str:
    """A decimal with no exponent and no trailing zeros (to the nanosecond)."""
    if value == int(value):
        return str(int(value))
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _looks_numeric(text: str) -> bool:
    return re.fullmatch(_NUMBER, text) is not None


def _parse_units(text: str) -> float:
    position, total = 0, 0.0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            raise ValueError(text)
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(text)
    return total
