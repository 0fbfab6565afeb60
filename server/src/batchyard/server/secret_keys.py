"""Where the server's secret keys come from.

`--secret-keys ID:BASE64KEY[,...]` (better: BATCHYARD_SECRET_KEYS, since a flag shows in
`ps`) or `--secret-key-file FILE` (one key a line). The first key seals, all of them open.

Without either, a server on its embedded PostgreSQL (the `batchyard dev` case) uses the
key file next to that data directory, `<data-dir>.secret-keys`, and creates it (mode 0600)
on first start; it is kept apart from the data directory so a copy of the database alone
does not carry the key. A server on an external database (`--database-url`) refuses to
start without a configured key: a key it made up on one replica would leave the others
(and the next restart in a fresh container) unable to read what it sealed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from batchyard.config import Flag, Values, path, text
from batchyard.server.secrets_crypto import (
    KeyRing,
    SecretKey,
    SecretKeyError,
    new_key,
    parse_keys,
    read_key_file,
    write_new_key_file,
)

if TYPE_CHECKING:
    from batchyard.server.settings import ServerSettings

log = structlog.get_logger(__name__)

NO_KEY = (
    "an external database (--database-url) needs a secret key to seal job secrets at "
    "rest: set BATCHYARD_SECRET_KEYS=ID:BASE64KEY or --secret-key-file FILE, the same "
    "on every server (make a key with `batchyard server new-secret-key`)"
)


SECRET_KEYS = Flag(
    "secret-keys",
    text(allow_empty=True, metavar="ID:BASE64KEY[,...]"),
    "keys sealing job secrets at rest (AES-256-GCM, 32 bytes each): the first seals, all "
    "open (prefer the variable or a file, a flag shows in ps). Required with "
    "--database-url unless --secret-key-file is given",
    secret=True,
)
SECRET_KEY_FILE = Flag(
    "secret-key-file",
    path(metavar="FILE"),
    "file of secret keys, one ID:BASE64KEY a line, the first seals",
    default_text="with the embedded database: <data-dir>.secret-keys, made on first start",
)
FLAGS = (SECRET_KEYS, SECRET_KEY_FILE)


def from_values(values: Values, database_url: str | None) -> tuple[SecretKey, ...]:
    """The configured keys; an external database without any is refused."""
    keys = keys_from_flags(values[SECRET_KEYS], values[SECRET_KEY_FILE])
    if not keys and database_url:
        raise SecretKeyError(NO_KEY)
    return keys


def keys_from_flags(spec: str | None, key_file: Path | None) -> tuple[SecretKey, ...]:
    """The keys `--secret-keys` or `--secret-key-file` name (none: the default applies)."""
    if spec and key_file:
        raise SecretKeyError("give --secret-keys or --secret-key-file, not both")
    if spec:
        try:
            return parse_keys(spec)
        except SecretKeyError as exc:
            raise SecretKeyError(f"--secret-keys: {exc}") from None
    if key_file:
        return read_key_file(key_file.expanduser())
    return ()


def default_key_file(data_dir: Path) -> Path:
    """The key file of an embedded database: next to its data directory."""
    return data_dir.with_name(f"{data_dir.name}.secret-keys")


def load_key_ring(settings: ServerSettings) -> KeyRing:
    """The configured keys, or the embedded database's key file (created if missing)."""
    if settings.secret_keys:
        ring = KeyRing(settings.secret_keys)
        source = "configured"
    elif settings.database_url:
        raise SecretKeyError(NO_KEY)
    else:
        path = default_key_file(settings.data_dir)
        if not path.exists():
            key = new_key(time.strftime("k%Y%m%d"))
            note = f"Made for the embedded database in {settings.data_dir}; back it up."
            try:
                write_new_key_file(path, key, note)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                log.warning(
                    "secret_key_generated",
                    file=str(path),
                    key_id=key.key_id,
                    hint="keep this file: without it the stored job secrets cannot be read",
                )
        ring = KeyRing(read_key_file(path))
        source = str(path)
    log.info(
        "secret_keys_loaded", seal_with=ring.primary, key_ids=list(ring.key_ids), source=source
    )
    return ring
