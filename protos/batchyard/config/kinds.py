"""Kinds of setting values: how one is parsed from text (a flag or a variable), how its
default is shown in help, and its metavar. Every parse raises ValueError with a message
that says what is wrong; `resolve` prefixes it with the flag or variable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from batchyard.config.units import format_duration, format_size, parse_duration, parse_size

T = TypeVar("T")
N = TypeVar("N", int, float)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Kind(Generic[T]):
    """How a setting's text becomes a value."""

    parse: Callable[[str], T]
    show: Callable[[T], str]
    metavar: str


def _bounded(value: N, low: N | None, high: N | None, show: Callable[[N], str], raw: str) -> N:
    if low is not None and value < low:
        raise ValueError(f"must be at least {show(low)}: {raw.strip()}")
    if high is not None and value > high:
        raise ValueError(f"must be at most {show(high)}: {raw.strip()}")
    return value


def integer(
    minimum: int | None = None, maximum: int | None = None, metavar: str = "N"
) -> Kind[int]:
    """A whole number, e.g. ``integer(1, 1000)``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"not a whole number: {raw!r}") from None
        return _bounded(value, minimum, maximum, str, raw)

    return Kind(parse, str, metavar)


def number(
    minimum: float | None = None, maximum: float | None = None, metavar: str = "NUMBER"
) -> Kind[float]:
    """A decimal number."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"not a number: {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a number: {raw!r}")
        return _bounded(value, minimum, maximum, lambda v: f"{v:g}", raw)

    return Kind(parse, lambda v: f"{v:g}", metavar)


def size(minimum: int | None = 0, maximum: int | None = None) -> Kind[int]:
    """Bytes, in the size grammar (``16KiB``, ``1.5MiB``, ``2GB``)."""

    def parse(raw: str) -> int:
        return _bounded(parse_size(raw), minimum, maximum, format_size, raw)

    return Kind(parse, format_size, "SIZE")


def duration(minimum: float | None = 0.0, maximum: float | None = None) -> Kind[float]:
    """Seconds, in the duration grammar (``90``, ``90s``, ``5m``, ``1h30m``)."""

    def parse(raw: str) -> float:
        return _bounded(parse_duration(raw), minimum, maximum, format_duration, raw)

    return Kind(parse, format_duration, "DURATION")


def choice(*values: str, metavar: str | None = None) -> Kind[str]:
    """One of ``values`` (compared case-insensitively, returned as declared)."""
    by_key = {v.lower(): v for v in values}

    def parse(raw: str) -> str:
        value = by_key.get(raw.strip().lower())
        if value is None:
            raise ValueError(f"must be one of {', '.join(values)}: {raw!r}")
        return value

    return Kind(parse, str, metavar or "{" + ",".join(values) + "}")


def text(*, allow_empty: bool = False, metavar: str = "TEXT") -> Kind[str]:
    """Free text; blank text is refused unless ``allow_empty``."""

    def parse(raw: str) -> str:
        if not allow_empty and not raw.strip():
            raise ValueError("must not be empty")
        return raw

    return Kind(parse, str, metavar)


def path(*, metavar: str = "PATH") -> Kind[Path]:
    """A filesystem path (``~`` expanded); whether it must exist is the caller's to check."""

    def parse(raw: str) -> Path:
        if not raw.strip():
            raise ValueError("must not be empty")
        return Path(raw).expanduser()

    return Kind(parse, str, metavar)


def switch() -> Kind[bool]:
    """On or off: 1/true/yes/on or 0/false/no/off."""

    def parse(raw: str) -> bool:
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"must be one of 1, 0, true, false, yes, no, on, off: {raw!r}")

    return Kind(parse, lambda v: "on" if v else "off", "BOOL")


def comma_list(
    item: Kind[T], *, minimum: int = 1, maximum: int | None = None
) -> Kind[tuple[T, ...]]:
    """Comma-separated items of one kind (blank items skipped)."""

    def parse(raw: str) -> tuple[T, ...]:
        values = tuple(item.parse(part) for part in raw.split(",") if part.strip())
        if len(values) < minimum:
            raise ValueError(f"needs at least {minimum} item(s): {raw!r}")
        if maximum is not None and len(values) > maximum:
            raise ValueError(f"takes at most {maximum} items, got {len(values)}")
        return values

    return Kind(parse, lambda v: ",".join(item.show(x) for x in v), item.metavar + ",...")
