"""A flag declared once: its name gives ``--name`` and ``BATCHYARD_NAME``; its kind parses
both the same way; its default and help make the ``--help`` text (and so the generated
flag tables of the docs). `resolve` reads every declared flag: the flag wins over the
variable, which wins over the default, and a bad value raises `SettingsError` naming
where it came from."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from batchyard.config.kinds import Kind

T = TypeVar("T")
ENV_PREFIX = "BATCHYARD_"


class SettingsError(ValueError):
    """A flag or variable has a bad value; the message names it."""


class _Adds(Protocol):
    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action: ...


@dataclass(frozen=True)
class Flag(Generic[T]):
    """One setting. ``default_from`` computes a default from the environment (shown in
    help as ``default_text``); ``env`` replaces the variable names (default
    ``BATCHYARD_<NAME>``); ``flag_only``: no variable; ``secret``: the value is never
    echoed in an error; ``presence``: a flag that takes no value (``--tls``), or, with
    ``negatable``, the pair ``--x/--no-x``; ``repeatable``: the flag may be given more
    than once: ``values.every(FLAG)`` is the tuple of every value given (a variable gives
    one), ``values[FLAG]`` the last."""

    name: str
    kind: Kind[T]
    help: str
    default: T | None = None
    default_from: Callable[[Mapping[str, str]], T] | None = None
    default_text: str | None = None
    env: tuple[str, ...] | None = None
    flag_only: bool = False
    secret: bool = False
    presence: bool = False
    negatable: bool = False
    metavar: str | None = None
    repeatable: bool = False

    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def variables(self) -> tuple[str, ...]:
        if self.flag_only:
            return ()
        if self.env is not None:
            return self.env
        return (ENV_PREFIX + self.dest.upper(),)

    def help_text(self) -> str:
        where = list(self.variables)
        shown = self.default_text
        if shown is None and self.default is not None:
            shown = self.kind.show(self.default)
        if shown is not None:
            where.append(f"default {shown}")
        detail = "; ".join(where)
        # argparse formats help with %-style: keep a literal percent sign literal.
        return (f"{self.help} ({detail})" if detail else self.help).replace("%", "%%")


def add_flags(parser: _Adds, flags: Iterable[Flag[Any]]) -> None:
    """Adds each flag to a parser or argument group. Values stay text until `resolve`, so
    flags and variables are parsed (and refused) alike."""
    for flag in flags:
        options: dict[str, Any] = {"dest": flag.dest, "default": None, "help": flag.help_text()}
        if flag.presence and flag.negatable:
            options["action"] = argparse.BooleanOptionalAction
        elif flag.presence:
            options.update(action="store_const", const="1")
        elif flag.repeatable:
            options.update(action="append", metavar=flag.metavar or flag.kind.metavar)
        else:
            options["metavar"] = flag.metavar or flag.kind.metavar
        parser.add_argument(flag.option, **options)


class Values:
    """The resolved value of each flag: ``values[FLAG]``."""

    def __init__(
        self,
        values: dict[str, Any],
        given: set[str] | dict[str, str],
        every: dict[str, tuple[Any, ...]] | None = None,
    ) -> None:
        self._values = values
        self._origins = given if isinstance(given, dict) else dict.fromkeys(given, "")
        """Flag name → where its value came from (a set: origins unknown)."""
        self._every = every or {}

    def __getitem__(self, flag: Flag[T]) -> T:
        return cast("T", self._values[flag.name])

    def given(self, flag: Flag[Any]) -> bool:
        """Whether the flag or one of its variables was set (not the default)."""
        return flag.name in self._origins

    def every(self, flag: Flag[T]) -> tuple[T, ...]:
        """Every value a repeatable flag was given, in order (() when it was not)."""
        return cast("tuple[T, ...]", self._every.get(flag.name, ()))

    def origin(self, flag: Flag[Any]) -> str:
        """Where the value came from: ``--name``, a variable's name, or "" (the default),
        for errors a later check of the value raises (``f"{origin}: ..."``)."""
        return self._origins.get(flag.name, "")


def resolve(flags: Iterable[Flag[Any]], args: argparse.Namespace, env: Mapping[str, str]) -> Values:
    """Every flag's value: from the command line, else its variable, else its default."""
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    every: dict[str, tuple[Any, ...]] = {}
    for flag in flags:
        raws, origin = _raws(flag, args, env)
        if not raws:
            values[flag.name] = (
                flag.default_from(env) if flag.default_from is not None else flag.default
            )
            continue
        given[flag.name] = origin
        parsed = tuple(_parse(flag, raw, origin) for raw in raws)
        values[flag.name] = parsed[-1]
        every[flag.name] = parsed
    return Values(values, given, every)


def _raws(
    flag: Flag[Any], args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[list[str], str]:
    """The texts given for the flag (a repeatable's several) and where they came from."""
    value = getattr(args, flag.dest, None)
    if flag.repeatable and isinstance(value, list) and value:
        return [str(item) for item in value], flag.option
    raw, origin = _raw(flag, args, env)
    return ([] if raw is None else [raw]), origin


def _raw(
    flag: Flag[Any], args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[str | None, str]:
    value = getattr(args, flag.dest, None)
    if isinstance(value, bool):
        return ("1" if value else "0"), flag.option
    if isinstance(value, str):
        return value, flag.option
    for variable in flag.variables:
        text = env.get(variable)
        if text is not None and text.strip() != "":
            return text, variable
    return None, ""


def _parse(flag: Flag[Any], raw: str, origin: str) -> Any:
    try:
        return flag.kind.parse(raw)
    except ValueError as exc:
        message = "has a bad value" if flag.secret else str(exc)
        raise SettingsError(f"{origin}: {message}") from None
