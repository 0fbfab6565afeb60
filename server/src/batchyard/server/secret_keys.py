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

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-keys",
        default=os.environ.get("BATCHYARD_SECRET_KEYS"),
        metavar="ID:BASE64KEY[,...]",
        help="keys sealing job secrets at rest (AES-256-GCM, 32 bytes each): the first "
        "seals, all open (BATCHYARD_SECRET_KEYS; prefer the variable or a file, a flag "
        "shows in ps). Required with --database-url unless --secret-key-file is given",
    )
    parser.add_argument(
        "--secret-key-file",
        type=Path,
        default=os.environ.get("BATCHYARD_SECRET_KEY_FILE"),
        metavar="FILE",
        help="file of secret keys, one ID:BASE64KEY a line, the first seals "
        "(BATCHYARD_SECRET_KEY_FILE; default with the embedded database: "
        "<data-dir>.secret-keys, made on first start)",
    )


def from_args(args: argparse.Namespace) -> tuple[SecretKey, ...]:
    """The configured keys; an external database without any is refused."""
    keys = keys_from_flags(args.secret_keys, args.secret_key_file)
    if not keys and args.database_url:
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
