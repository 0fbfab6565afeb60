"""Settings grammar shared by every Batchyard process: how a flag is declared (name,
``BATCHYARD_*`` variable, kind, default, help) and how sizes and durations are written.

Server, worker and client declare their flags with `Flag` and read them with `resolve`,
so a flag wins over its variable, which wins over the default, and a bad value is
refused with the same words everywhere, naming the flag or variable it came from. Only
the standard library is used: every package can depend on it.
"""

from batchyard.config.flags import Flag, SettingsError, Values, add_flags, resolve
from batchyard.config.kinds import (
    Kind,
    choice,
    comma_list,
    duration,
    integer,
    number,
    path,
    size,
    switch,
    text,
)
from batchyard.config.units import format_duration, format_size, parse_duration, parse_size

__all__ = [
    "Flag",
    "Kind",
    "SettingsError",
    "Values",
    "add_flags",
    "choice",
    "comma_list",
    "duration",
    "format_duration",
    "format_size",
    "integer",
    "number",
    "parse_duration",
    "parse_size",
    "path",
    "resolve",
    "size",
    "switch",
    "text",
]
