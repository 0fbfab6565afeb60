"""The databases SQL jobs run against, and how a job's ``sql_target`` picks one.

The operator names connections with ``--sql-target NAME=DSN`` (repeatable) or
``BATCHYARD_SQL_TARGET_<NAME>=DSN`` (the environment keeps passwords out of the worker's own
command line); names are case-insensitive (kept in lower case) and a flag wins over the
variable of the same name. A job names one of them (``sql_target.connection``) or carries a
DSN of its own (``sql_target.dsn``, a secret the lease hands over).

A DSN is a secret as a whole: it is never put in an error, a log entry or a command line
(the runner gets it in its environment).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from batchyard.config import Flag, Kind, SettingsError, Values
from batchyard.v1 import job_pb2
from batchyard.worker.sources.port import SourceError

ENV_PREFIX = "BATCHYARD_SQL_TARGET_"
DSN_VARIABLE = "BATCHYARD_SQL_DSN"
"""The runner's variable for the DSN (``batchyard.worker.sql_runner.main.DSN_VARIABLE``:
the worker may not import the runner, a test keeps the two equal)."""
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
"""A connection name (the server's rule, in lower case)."""
_SCHEMES = ("postgres://", "postgresql://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_flag(raw: str) -> tuple[str, str]:
    """``NAME=DSN`` → (name, dsn); a ValueError's message never holds the DSN."""
    name, equals, dsn = raw.partition("=")
    if not equals:
        raise ValueError("expected NAME=DSN")
    return check_name(name), check_dsn(dsn)


SQL_TARGET = Flag(
    "sql-target",
    Kind(parse_flag, lambda target: f"{target[0]}=…", "NAME=DSN"),
    "a database SQL jobs may name as their target connection (repeatable; or "
    f"{ENV_PREFIX}<NAME>=DSN, which keeps the password off the command line)",
    flag_only=True,
    repeatable=True,
)


def from_values(values: Values, environ: Mapping[str, str]) -> dict[str, str]:
    """``BATCHYARD_SQL_TARGET_<NAME>`` variables, then ``--sql-target`` flags over them."""
    try:
        targets = from_environment(environ)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    targets.update(values.every(SQL_TARGET))
    return targets


def from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``BATCHYARD_SQL_TARGET_<NAME>`` variables that are set (empty ones are not)."""
    found = {}
    for variable, dsn in environ.items():
        if variable.startswith(ENV_PREFIX) and dsn:
            try:
                found[check_name(variable.removeprefix(ENV_PREFIX))] = check_dsn(dsn)
            except ValueError as exc:
                raise ValueError(f"{variable}: {exc}") from None
    return found


def check_name(name: str) -> str:
    """The connection name in lower case."""
    lowered = name.strip().lower()
    if not NAME.fullmatch(lowered):
        raise ValueError(
            f"connection name {name!r}: 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return lowered


def check_dsn(dsn: str) -> str:
    if not dsn.startswith(_SCHEMES) or _CONTROL.search(dsn):
        raise ValueError("the DSN must be a postgres:// or postgresql:// URL")
    return dsn


def target_dsn(target: job_pb2.SqlTarget, configured: Mapping[str, str]) -> str:
    """The DSN a job's target stands for; raises SourceError (never quoting a DSN)."""
    kind = target.WhichOneof("target")
    if kind == "dsn" and target.dsn:
        return target.dsn
    if kind == "connection" and target.connection:
        dsn = configured.get(target.connection.lower())
        if dsn is None:
            raise SourceError(
                f"sql target {target.connection!r} is not configured on this worker "
                f"(configured: {_names(configured)})"
            )
        return dsn
    if target.has_dsn:
        raise SourceError("the sql job's DSN was not handed to the worker")
    raise SourceError("the sql job names no target (sql_target: a connection or a dsn)")


def describe_target(target: job_pb2.SqlTarget) -> str:
    """``connection 'analytics'`` or ``a DSN secret`` (nothing of the DSN is shown)."""
    if target.WhichOneof("target") == "connection":
        return f"connection {target.connection!r}"
    return "a DSN secret"


def _names(configured: Iterable[str]) -> str:
    names = sorted(configured)
    return ", ".join(names) if names else "none"
