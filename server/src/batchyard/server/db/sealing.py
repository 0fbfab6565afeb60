"""Stored secrets, in bulk: sealing the plaintext of old rows (migration 8) and resealing
every row with the newest key (`batchyard server rotate-secrets`).

Both work in batches keyed on the primary key and are idempotent: a row already done is
skipped, so a run cut short is simply started again. A definition version's sealed value
is replaced in place; a run configuration also gets a new id (its id is a digest under the
newest key, so the id of a retired key is not left behind as a way to test guesses).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.db.job_codec import (
    SecretBox,
    canonical_json,
    secrets_from_json,
    secrets_to_json,
)
from batchyard.server.db.sql import q
from batchyard.server.domain.errors import SecretsUnreadable
from batchyard.server.secrets_crypto import BadCiphertext, SecretKeyError, split_sealed

log = structlog.get_logger(__name__)

BATCH = 500
NEEDS_KEY = (
    "migration 8 seals the job secrets stored so far and needs the server's secret key: "
    "give the same --secret-keys / BATCHYARD_SECRET_KEYS or --secret-key-file as the server"
)


# ------------------------------------------------------------------ migration 8


async def seal_stored_secrets(conn: asyncpg.Connection, box: SecretBox | None) -> None:
    """Migration 8's step, in its transaction: seal every plaintext secrets document and
    clear it; re-key the run configurations. Needs a key only if there is such a row."""
    sealed = await _seal_definition_versions(conn, box)
    rekeyed = await _seal_run_configs(conn, box)
    if sealed or rekeyed:
        log.info("stored_secrets_sealed", definition_versions=sealed, run_configs=rekeyed)


def _require(box: SecretBox | None) -> SecretBox:
    if box is None:
        raise SecretKeyError(NEEDS_KEY)
    return box


def _doc(value: str | dict[str, Any]) -> dict[str, Any]:
    """A jsonb value: text on the migration's bare connection, a dict on the pool's."""
    return json.loads(value) if isinstance(value, str) else value


def _plain_text(value: str | dict[str, Any]) -> str:
    return canonical_json(secrets_to_json(secrets_from_json(_doc(value))))


async def _seal_definition_versions(conn: asyncpg.Connection, box: SecretBox | None) -> int:
    done = 0
    after: tuple[UUID | None, int | None] = (None, None)
    while rows := await conn.fetch(q("plaintext_definition_secrets"), *after, BATCH):
        ring = _require(box)
        await conn.execute(
            q("seal_definition_secrets"),
            [r["definition_id"] for r in rows],
            [r["version"] for r in rows],
            [ring.seal_text(_plain_text(r["secrets"])) for r in rows],
        )
        done += len(rows)
        after = (rows[-1]["definition_id"], rows[-1]["version"])
    return done


async def _seal_run_configs(conn: asyncpg.Connection, box: SecretBox | None) -> int:
    done = 0
    after: bytes | None = None
    while rows := await conn.fetch(q("plaintext_run_configs"), after, BATCH):
        ring = _require(box)
        new = [_rekeyed(ring, r["config"], _plain_text(r["secrets"])) for r in rows]
        await _rekey(conn, rows, new)
        done += len(rows)
        after = rows[-1]["id"]
    return done


def _rekeyed(
    box: SecretBox, config: str | dict[str, Any], secrets_text: str
) -> tuple[bytes, bytes]:
    """A configuration's id and sealed secrets under the newest key."""
    return box.config_id(canonical_json(_doc(config)), secrets_text), box.seal_text(secrets_text)


async def _rekey(
    conn: asyncpg.Connection | asyncpg.Pool,
    rows: list[asyncpg.Record],
    new: list[tuple[bytes, bytes]],
) -> None:
    await conn.execute(
        q("rekey_run_configs"),
        [r["id"] for r in rows],
        [new_id for new_id, _ in new],
        [canonical_json(_doc(r["config"])) for r in rows],
        [sealed for _, sealed in new],
    )


# ------------------------------------------------------------------ rotation


@dataclass
class Rotation:
    """What a rotation did: rows resealed, and rows it could not open, by key id."""

    definition_versions: int = 0
    run_configs: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)
    dangling_runs: int = 0
    schedules: int = 0


async def rotate(pool: asyncpg.Pool, box: SecretBox, batch: int = BATCH) -> Rotation:
    """Reseal every stored secret not sealed with the newest key, in batches of `batch`
    rows (one short statement each: safe while servers serve)."""
    done = Rotation()
    await _reseal_definition_versions(pool, box, batch, done)
    await _reseal_run_configs(pool, box, batch, done)
    await _reseal_schedules(pool, box, batch, done)
    done.dangling_runs = await pool.fetchval(q("dangling_run_specs"))
    return done


def _open(box: SecretBox, sealed: bytes, done: Rotation) -> str | None:
    """The canonical plaintext of a sealed value, or None (counted) if it cannot be opened."""
    try:
        return canonical_json(secrets_to_json(box.open(sealed)))
    except SecretsUnreadable:
        try:
            key_id = split_sealed(sealed)[0]
        except BadCiphertext:
            key_id = "(malformed)"
        if key_id in box.keys.key_ids:
            key_id += " (fails authentication)"
        done.unreadable[key_id] += 1
        return None


async def _reseal_definition_versions(
    pool: asyncpg.Pool, box: SecretBox, batch: int, done: Rotation
) -> None:
    after: tuple[UUID | None, int | None] = (None, None)
    header = box.keys.header
    while rows := await pool.fetch(q("definition_secrets_to_reseal"), *after, header, batch):
        after = (rows[-1]["definition_id"], rows[-1]["version"])
        todo = [(r, text) for r in rows if (text := _open(box, r["sealed_secrets"], done))]
        if todo:
            await pool.execute(
                q("reseal_definition_secrets"),
                [r["definition_id"] for r, _ in todo],
                [r["version"] for r, _ in todo],
                [r["sealed_secrets"] for r, _ in todo],
                [box.seal_text(text) for _, text in todo],
            )
        done.definition_versions += len(todo)
        log.info("definition_secrets_resealed", rows=done.definition_versions)


async def _reseal_run_configs(
    pool: asyncpg.Pool, box: SecretBox, batch: int, done: Rotation
) -> None:
    after: bytes | None = None
    header = box.keys.header
    while rows := await pool.fetch(q("run_configs_to_reseal"), after, header, batch):
        after = rows[-1]["id"]
        todo = [(r, text) for r in rows if (text := _open(box, r["sealed_secrets"], done))]
        if todo:
            await _rekey(
                pool, [r for r, _ in todo], [_rekeyed(box, r["config"], t) for r, t in todo]
            )
        done.run_configs += len(todo)
        log.info("run_config_secrets_resealed", rows=done.run_configs)


async def _reseal_schedules(pool: asyncpg.Pool, box: SecretBox, batch: int, done: Rotation) -> None:
    """Schedules' secret env (their overrides' secret_env), like definition versions."""
    after: UUID | None = None
    header = box.keys.header
    while rows := await pool.fetch(q("schedule_secrets_to_reseal"), after, header, batch):
        after = rows[-1]["id"]
        todo = [(r, text) for r in rows if (text := _open(box, r["sealed_secrets"], done))]
        if todo:
            await pool.execute(
                q("reseal_schedule_secrets"),
                [r["id"] for r, _ in todo],
                [r["sealed_secrets"] for r, _ in todo],
                [box.seal_text(text) for _, text in todo],
            )
        done.schedules += len(todo)
