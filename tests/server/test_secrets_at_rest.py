"""Secrets at rest: sealed with the server's key, seen only by the job.

A canary secret (a secret env value, a Git token, a SQL DSN password) goes through every
way in, and is looked for, plain and base64-, URL- and hex-encoded, in every response (and
the CLI's `-o json`), every error, the process log, the audit trail and a dump of every
table of the database. Only the worker's lease carries it. Then rotation: written under
key A, resealed under B, A removed, everything still opens; a key nobody has is a clear
error, never a crash.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format
from google.protobuf.message import Message

from batchyard.client.connection import aio_channel
from batchyard.server.app import App, run_migrations
from batchyard.server.db.definition_reader import DefinitionReader
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.migrate import load_migrations
from batchyard.server.db.pool import create_pool
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import SecretsUnreadable
from batchyard.server.secret_keys import default_key_file, load_key_ring
from batchyard.server.secrets_crypto import (
    BadCiphertext,
    KeyRing,
    SecretKey,
    SecretKeyError,
    UnknownKey,
    new_key,
    parse_keys,
)
from batchyard.server.settings import ServerSettings
from batchyard.v1 import (
    access_service_pb2,
    access_service_pb2_grpc,
    definition_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_service_pb2 as rpb
from tests import pg
from tests.client.cli_runner import Cli
from tests.schema_dump import pg_dump_path
from tests.server.helpers import lease
from tests.server.test_migrations import CONFIG, DEFAULT_WS, apply_up_to

KEY_A, KEY_B, KEY_C = new_key("a"), new_key("b"), new_key("c")


class Canaries:
    """Secrets that must be seen only by the job; each holds characters that encoding
    changes, so a base64- or URL-encoded copy is a different string."""

    def __init__(self) -> None:
        tag = secrets.token_hex(6)
        self.env = f"env-canary-{tag}/+ &?="
        self.override = f"override-canary-{tag}/+:"
        self.git = f"git-canary-{tag}+/="
        self.password = f"pw-canary-{tag}@:/?"
        self.dsn = f"postgresql://jobuser:{quote(self.password, safe='')}@db.invalid:5432/x"

    def all(self) -> list[str]:
        return [self.env, self.override, self.git, self.password, self.dsn]

    def forms(self) -> set[str]:
        out: set[str] = set()
        for secret in self.all():
            raw = secret.encode()
            out |= {secret, quote(secret, safe=""), quote_plus(secret), raw.hex()}
            for shift in range(3):  # base64 at each alignment, without the edge groups
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    out.add(encode(b"\0" * shift + raw).decode()[4:-4])
        return out

    def assert_absent(self, where: str, text: str | bytes) -> None:
        blob = text.decode("latin-1") if isinstance(text, bytes) else text
        for form in self.forms():
            assert form not in blob, f"a canary ({form!r}) in {where}"


def sql_definition(canary: Canaries, name: str = "secret-job") -> definition_pb2.Definition:
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source=job_pb2.Source(
            git=job_pb2.GitSource(
                repo_url="https://git.invalid/jobs.git",
                reference="main",
                username="ci",
                access_token=canary.git,
            )
        ),
        source_location="query.sql",
        env={"PLAIN": "visible"},
        secret_env={"API_TOKEN": canary.env},
        sql_target=job_pb2.SqlTarget(dsn=canary.dsn),
    )
    return definition_pb2.Definition(name=name, config=config)


@contextlib.contextmanager
def process_log() -> Iterator[list[str]]:
    """Every line the server process logs (DEBUG and up), as rendered."""
    root = logging.getLogger()
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    keep = Keep()
    keep.setFormatter(root.handlers[0].formatter)
    before = root.level
    root.addHandler(keep)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.setLevel(before)
        root.removeHandler(keep)


async def database_text(dsn: str) -> str:
    """Every row of every table, cast to text (bytea as hex), plus a pg_dump of the data."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        rows = []
        for t in tables:
            sql = f'SELECT r::text FROM "{t["schemaname"]}"."{t["tablename"]}" r'
            rows += [str(r[0]) for r in await conn.fetch(sql)]
    finally:
        await conn.close()
    dump = await asyncio.to_thread(
        subprocess.run,
        [pg_dump_path(), "--data-only", "--no-owner", "--dbname", dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "definition_versions" in dump.stdout
    return "\n".join(rows) + dump.stdout


async def calls_failing(canary: Canaries, definitions, runs) -> list[grpc.aio.AioRpcError]:
    """Requests carrying the canaries that the server refuses, and how it refuses them."""
    errors = []
    bad_dsn = sql_definition(canary, "bad-dsn")
    bad_dsn.config.sql_target.dsn = f"mysql://jobuser:{canary.password}@db.invalid/x"
    bad_env = sql_definition(canary, "bad-env")
    bad_env.config.secret_env["1BAD"] = canary.env
    bad_git = sql_definition(canary, "bad-git")
    token = quote(canary.git, safe="")
    bad_git.config.source.git.repo_url = f"https://ci:{token}@git.invalid/jobs.git"
    inline = sql_definition(canary).config
    inline.ClearField("sql_target")  # SQL without a target
    requests = [
        definitions.CreateDefinition(dpb.CreateDefinitionRequest(definition=d))
        for d in (sql_definition(canary), bad_dsn, bad_env, bad_git)  # the first: exists
    ]
    requests += [
        runs.SubmitRun(rpb.SubmitRunRequest(config=inline)),
        runs.SubmitRun(
            rpb.SubmitRunRequest(
                definition="secret-job",
                overrides=run_pb2.RunOverrides(secret_env={"BATCHYARD_X": canary.override}),
            )
        ),
        definitions.UpdateDefinition(
            dpb.UpdateDefinitionRequest(
                definition="secret-job",
                changes=sql_definition(canary),
                update_mask=field_mask_pb2.FieldMask(paths=["config"]),
                expected_version=99,
            )
        ),
    ]
    for call in requests:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        errors.append(caught.value)
    return errors


def assert_error_clean(canary: Canaries, error: grpc.aio.AioRpcError) -> None:
    assert error.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.ABORTED,
    ), error
    canary.assert_absent("an error message", error.details() or "")
    canary.assert_absent("an error's debug string", error.debug_error_string() or "")
    metadata: Any = error.trailing_metadata() or ()  # (key, value) pairs at run time
    for key, value in metadata:
        canary.assert_absent(f"error metadata {key}", value)


async def test_a_canary_secret_reaches_only_the_job(
    server: App, definitions, runs, workers, channel, capsys, database_url
):
    canary = Canaries()
    target = f"127.0.0.1:{server.port}"
    seen: list[Message] = []
    with process_log() as log_lines:
        created = await definitions.CreateDefinition(
            dpb.CreateDefinitionRequest(definition=sql_definition(canary))
        )
        seen.append(created)
        assert created.definition.config.secret_env_names == ["API_TOKEN"]
        assert created.definition.config.source.git.has_access_token
        assert created.definition.config.sql_target.has_dsn
        errors = await calls_failing(canary, definitions, runs)
        seen.append(
            await definitions.UpdateDefinition(
                dpb.UpdateDefinitionRequest(
                    definition="secret-job",
                    changes=definition_pb2.Definition(description="still secret"),
                    update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                )
            )
        )
        overrides = run_pb2.RunOverrides(secret_env={"EXTRA": canary.override})
        submitted = await runs.SubmitRun(
            rpb.SubmitRunRequest(definition="secret-job", overrides=overrides)
        )
        inline = await runs.SubmitRun(rpb.SubmitRunRequest(config=sql_definition(canary).config))
        batch = await runs.BatchSubmitRuns(
            rpb.BatchSubmitRunsRequest(requests=[rpb.SubmitRunRequest(definition="secret-job")] * 3)
        )
        seen += [submitted, inline, batch]
        run_id = submitted.run.uuid
        seen.append(
            await definitions.GetDefinition(dpb.GetDefinitionRequest(definition="secret-job"))
        )
        seen.append(await definitions.ListDefinitions(dpb.ListDefinitionsRequest()))
        seen.append(await runs.GetRun(rpb.GetRunRequest(run=run_id)))
        seen.append(await runs.ListRuns(rpb.ListRunsRequest()))
        async for event in runs.WatchRun(rpb.WatchRunRequest(run=run_id)):
            seen.append(event)
            break
        audit = access_service_pb2_grpc.AuditServiceStub(channel)
        seen.append(await audit.ListAuditEvents(access_service_pb2.ListAuditEventsRequest()))

        leased = {x.run: x for x in await lease(workers, max_runs=10)}
        job = leased[run_id].config
        assert job.secret_env["API_TOKEN"] == canary.env
        assert job.secret_env["EXTRA"] == canary.override
        assert job.source.git.access_token == canary.git
        assert job.sql_target.dsn == canary.dsn
        assert leased[inline.run.uuid].config.secret_env["API_TOKEN"] == canary.env

        cli_out = []
        for group, *argv in (
            ("definitions", "get", "secret-job"),
            ("definitions", "list"),
            ("runs", "get", run_id),
            ("runs", "list"),
        ):
            code, out, err = await Cli(capsys, target, group)(*argv, "-o", "json")
            assert code == 0, err
            cli_out.append(out + err)
        assert "API_TOKEN" in cli_out[0]
    await server.stop(0)  # flushes the buffered audit trail

    for message in seen:
        kind = type(message).__name__
        canary.assert_absent(kind, message.SerializeToString())
        canary.assert_absent(f"{kind} as JSON", json_format.MessageToJson(message))
    for out in cli_out:
        canary.assert_absent("the CLI's -o json", out)
    for error in errors:
        assert_error_clean(canary, error)
    assert any("rpc" in line.lower() for line in log_lines), "the log was captured"
    canary.assert_absent("the server's log", "\n".join(log_lines))
    canary.assert_absent("the database", await database_text(database_url))


async def sealed_values(dsn: str) -> list[bytes]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT sealed_secrets FROM definition_versions"
            " UNION ALL SELECT sealed_secrets FROM run_configs"
        )
        return [bytes(r[0]) for r in rows]
    finally:
        await conn.close()


def key_env(*keys: SecretKey) -> str:
    return ",".join(k.line() for k in keys)


async def rotate_secrets(dsn: str, *keys: SecretKey) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATCHYARD_SECRET_KEYS": key_env(*keys), "BATCHYARD_LOG_LEVEL": "error"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "batchyard.server", "rotate-secrets", "--database-url", dsn],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stubs(app: App, token: str) -> tuple[grpc.aio.Channel, Any, Any, Any]:
    """A channel to `app` and its definition, run and worker stubs."""
    channel = aio_channel(f"127.0.0.1:{app.port}", token=token)
    return (
        channel,
        definition_service_pb2_grpc.DefinitionServiceStub(channel),
        run_service_pb2_grpc.RunServiceStub(channel),
        worker_service_pb2_grpc.WorkerServiceStub(channel),
    )


async def test_rotation_reseals_everything_and_retires_the_old_key(
    server_factory, database_url, admin_token
):
    canary = Canaries()
    old = await server_factory(secret_keys=(KEY_A,))
    channel, definitions, runs, _ = stubs(old, admin_token)
    async with channel:
        await definitions.CreateDefinition(
            dpb.CreateDefinitionRequest(definition=sql_definition(canary))
        )
        first = (await runs.SubmitRun(rpb.SubmitRunRequest(definition="secret-job"))).run.uuid
    await old.stop(0)
    assert {v[:3] for v in await sealed_values(database_url)} == {b"\x01\x01a"}

    both = await server_factory(secret_keys=(KEY_B, KEY_A))  # B first, A still opens
    channel, definitions, runs, _ = stubs(both, admin_token)
    async with channel:
        overrides = run_pb2.RunOverrides(secret_env={"EXTRA": canary.override})
        second = await runs.SubmitRun(
            rpb.SubmitRunRequest(definition="secret-job", overrides=overrides)
        )
        rotated = await rotate_secrets(database_url, KEY_B, KEY_A)  # while B+A serves
        assert rotated.returncode == 0, rotated.stderr
        assert "1 definition versions, 1 run configurations" in rotated.stdout
        again = await rotate_secrets(database_url, KEY_B, KEY_A)
        assert "0 definition versions, 0 run configurations" in again.stdout
        # still serving and reading what was resealed under it
        assert (await runs.GetRun(rpb.GetRunRequest(run=first))).run.config.secret_env_names
    await both.stop(0)
    assert {v[:3] for v in await sealed_values(database_url)} == {b"\x01\x01b"}
    for out in (rotated.stdout + rotated.stderr, again.stdout + again.stderr):
        canary.assert_absent("rotate-secrets output", out)
        assert KEY_A.line().split(":")[1] not in out and KEY_B.line().split(":")[1] not in out

    new = await server_factory(secret_keys=(KEY_B,))  # A is gone
    channel, definitions, runs, workers = stubs(new, admin_token)
    async with channel:
        got = await definitions.GetDefinition(dpb.GetDefinitionRequest(definition="secret-job"))
        assert got.definition.config.secret_env_names == ["API_TOKEN"]
        leased = {x.run: x.config for x in await lease(workers, max_runs=10)}
        assert leased[first].secret_env["API_TOKEN"] == canary.env
        assert leased[first].source.git.access_token == canary.git
        assert leased[second.run.uuid].secret_env["EXTRA"] == canary.override
        assert leased[second.run.uuid].sql_target.dsn == canary.dsn
        third = await runs.SubmitRun(rpb.SubmitRunRequest(definition="secret-job"))
        assert not third.deduplicated
    conn = await asyncpg.connect(database_url)
    try:  # runs of equal content still share one stored configuration
        assert await conn.fetchval("SELECT count(*) FROM run_configs") == 2
        assert await conn.fetchval("SELECT count(*) FROM run_specs") == 3
    finally:
        await conn.close()


async def test_an_unknown_key_is_a_clear_error_not_a_crash(
    server_factory, database_url, admin_token
):
    canary = Canaries()
    old = await server_factory(secret_keys=(KEY_A,))
    channel, definitions, runs, _ = stubs(old, admin_token)
    async with channel:
        await definitions.CreateDefinition(
            dpb.CreateDefinitionRequest(definition=sql_definition(canary))
        )
        run_id = (await runs.SubmitRun(rpb.SubmitRunRequest(definition="secret-job"))).run.uuid
    await old.stop(0)

    wrong = await server_factory(secret_keys=(KEY_C,))
    channel, definitions, runs, workers = stubs(wrong, admin_token)
    with process_log() as log_lines:
        async with channel:
            assert await lease(workers, max_runs=5, wait=0.5) == []
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await runs.GetRun(rpb.GetRunRequest(run=run_id))
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "sealed with key 'a'" in (caught.value.details() or "")
            # the server still serves: a definition under its own key works, also when
            # read in one query with the unreadable one (submits share definition reads)
            other = sql_definition(canary, "other")
            await definitions.CreateDefinition(dpb.CreateDefinitionRequest(definition=other))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await runs.SubmitRun(rpb.SubmitRunRequest(definition="secret-job"))
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            await runs.SubmitRun(rpb.SubmitRunRequest(definition="other"))
            pool = await create_pool(database_url)
            try:  # read in one query, each gets its own answer
                reader = DefinitionReader(pool, SecretBox(KeyRing([KEY_C])))
                ws = Workspace(DEFAULT_WS, "default")
                answers: Any = await asyncio.gather(
                    reader.current(ws, "secret-job"),
                    reader.current(ws, "other"),
                    return_exceptions=True,
                )
            finally:
                await pool.close()
            assert isinstance(answers[0], SecretsUnreadable)
            assert answers[1].draft.name == "other"
    assert any("run_secrets_unreadable" in line and "'a'" in line for line in log_lines)
    conn = await asyncpg.connect(database_url)
    try:  # the lease was undone: pending, no attempt, saying why
        row = await conn.fetchrow(
            "SELECT status, attempt, message FROM runs WHERE id = $1", uuid.UUID(run_id)
        )
        assert (row["status"], row["attempt"]) == ("PENDING", 0)
        assert "sealed with key 'a'" in row["message"]
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM run_attempts WHERE run_id = $1", uuid.UUID(run_id)
            )
            == 0
        )
    finally:
        await conn.close()

    failed = await rotate_secrets(database_url, KEY_C)
    assert failed.returncode == 1
    assert "sealed with a" in failed.stderr and "Traceback" not in failed.stderr


async def test_stored_plaintext_is_sealed_by_the_migration(pg_admin_dsn):
    name = await pg.create_database(pg_admin_dsn)
    dsn = pg.dsn_for(pg_admin_dsn, name)
    canary = Canaries()
    plain = {"env": {"API_TOKEN": canary.env}, "git_token": canary.git, "sql_dsn": ""}
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_up_to(conn, 7)
            await store_plaintext(conn, plain)
        finally:
            await conn.close()
        with pytest.raises(SecretKeyError, match="secret key"):
            await run_migrations(dsn)  # rows to seal, no key: nothing changes
        box = SecretBox(KeyRing([KEY_A]))
        assert await run_migrations(dsn, box) == [v.version for v in load_migrations()][7:]
        conn = await asyncpg.connect(dsn)
        try:
            (config,) = await conn.fetch("SELECT id, sealed_secrets FROM run_configs")
            assert box.open(config["sealed_secrets"]).env == {"API_TOKEN": canary.env}
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM run_specs WHERE config_id = $1", config["id"]
                )
                == 2
            )
            sealed = await conn.fetchval("SELECT sealed_secrets FROM definition_versions")
            assert box.open(sealed).git_token == canary.git
        finally:
            await conn.close()
        canary.assert_absent("the migrated database", await database_text(dsn))
    finally:
        await pg.drop_database(pg_admin_dsn, name)


async def store_plaintext(conn: asyncpg.Connection, plain: Mapping[str, object]) -> None:
    """A definition and two runs stored before migration 8: plaintext secrets, and two
    configuration rows of equal content under different unkeyed ids (the old scheme)."""
    definition = uuid.uuid4()
    await conn.execute(
        "INSERT INTO definitions (id, workspace_id, name, current_version)"
        " VALUES ($1, $2, 'old', 1)",
        definition,
        DEFAULT_WS,
    )
    await conn.execute(
        "INSERT INTO definition_versions (definition_id, version, name, description, job_type,"
        " config, secrets) VALUES ($1, 1, 'old', '', 'SHELL', $2, $3)",
        definition,
        json.dumps(CONFIG),
        json.dumps(plain),
    )
    for old_id in (b"old-id-1", b"old-id-2"):
        run = uuid.uuid4()
        await conn.execute(
            "INSERT INTO runs (id, workspace_id, queue, priority, status, reason)"
            " VALUES ($1, $2, 'default', 0, 'PENDING', 'RECENTLY_SUBMITTED')",
            run,
            DEFAULT_WS,
        )
        await conn.execute(
            "INSERT INTO run_configs (id, config, secrets) VALUES ($1, $2, $3)",
            old_id,
            json.dumps(CONFIG),
            json.dumps(plain),
        )
        await conn.execute(
            "INSERT INTO run_specs (run_id, payload, config_id) VALUES ($1, '', $2)", run, old_id
        )


async def test_an_external_database_needs_a_key(database_url):
    with pytest.raises(SecretKeyError, match="BATCHYARD_SECRET_KEYS"):
        await App(ServerSettings(listen="127.0.0.1:0", database_url=database_url)).start()
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "batchyard.server", "--database-url", database_url],
        env={k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_SECRET")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "needs a secret key" in refused.stderr and "Traceback" not in refused.stderr


def test_the_embedded_database_gets_a_private_key_file(tmp_path: Path):
    settings = ServerSettings(data_dir=tmp_path / "pg")
    with process_log() as log_lines:
        made = load_key_ring(settings)
    path = default_key_file(tmp_path / "pg")
    assert path == tmp_path / "pg.secret-keys"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_key_ring(settings).key_ids == made.key_ids  # kept, not made again
    material = path.read_text().strip().splitlines()[-1].split(":")[1]
    assert any(str(path) in line for line in log_lines)
    assert not any(material in line for line in log_lines)
    keyed = ServerSettings(secret_keys=(KEY_A,))
    assert material not in repr(made)
    assert KEY_A.line().split(":")[1] not in repr(keyed) + repr(KeyRing([KEY_A]))


def test_sealing_is_randomised_authenticated_and_names_its_key():
    ring = KeyRing([KEY_B, KEY_A])
    plain = b'{"env": {"K": "v"}}'
    one, two = ring.seal(plain), ring.seal(plain)
    assert one != two and ring.open(one) == ring.open(two) == plain
    assert one.startswith(ring.header) and b"b" in one[:3]
    assert KeyRing([KEY_A]).digest(plain) != ring.digest(plain)  # keyed by the first key
    with pytest.raises(UnknownKey, match="'b'"):
        KeyRing([KEY_A]).open(one)
    tampered = one[:-1] + bytes([one[-1] ^ 1])
    with pytest.raises(BadCiphertext):
        ring.open(tampered)
    older = KeyRing([KEY_A]).seal(plain)
    assert ring.open(older) == plain  # every key opens


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nokey", "ID:BASE64KEY"),
        ("a:" + base64.b64encode(b"short").decode(), "32 bytes"),
        ("a:!!notbase64!!", "not base64"),
        # a random key: an id of its own, the same in every pytest-xdist worker
        pytest.param(f"{KEY_A.line()},{KEY_A.line()}", "unique", id="twice-unique"),
        ("bad id:" + base64.b64encode(bytes(32)).decode(), "key id"),
    ],
)
def test_bad_key_specs_are_refused_without_echoing_them(spec: str, message: str):
    with pytest.raises(SecretKeyError, match=message) as caught:
        parse_keys(spec)
    material = spec.rpartition(":")[2]
    assert material not in str(caught.value)
