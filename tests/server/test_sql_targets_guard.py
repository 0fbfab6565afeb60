"""A SQL job's DSN never names the service's own database nor uses its credentials:
refused with the field, on create, update and inline submit."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from batchyard.server.domain.sql_targets import identity_of
from batchyard.v1 import definition_pb2, job_pb2
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_service_pb2 as rpb
from tests.rpc import failure


def sql_config(dsn: str) -> job_pb2.JobConfig:
    return json_format.ParseDict(
        {
            "type": "JOB_TYPE_SQL",
            "source": {"inline": {"text": "SELECT 1"}},
            "sqlTarget": {"dsn": dsn},
        },
        job_pb2.JobConfig(),
    )


def other_database(dsn: str, database: str, user: str | None = None) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc if user is None else f"{user}:pw@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(path=f"/{database}", netloc=netloc))


async def refused(call: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT, got
    return got


async def test_the_services_database_is_refused_everywhere(
    definitions: Any, runs: Any, database_url: str
) -> None:
    own = database_url  # the test server's own database, as a job might name it
    got = await refused(
        definitions.CreateDefinition(
            dpb.CreateDefinitionRequest(
                definition=definition_pb2.Definition(name="steal", config=sql_config(own))
            )
        )
    )
    assert got.fields["definition.config.sql_target.dsn"] == (
        "must not name the service's own database"
    )
    got = await refused(runs.SubmitRun(rpb.SubmitRunRequest(config=sql_config(own))))
    assert "config.sql_target.dsn" in got.fields

    elsewhere = other_database(own, "analytics", user="analyst")
    created = await definitions.CreateDefinition(
        dpb.CreateDefinitionRequest(
            definition=definition_pb2.Definition(name="fine", config=sql_config(elsewhere))
        )
    )
    assert created.definition.config.sql_target.has_dsn
    got = await refused(
        definitions.UpdateDefinition(
            dpb.UpdateDefinitionRequest(
                definition="fine",
                changes=definition_pb2.Definition(config=sql_config(own)),
                update_mask=field_mask_pb2.FieldMask(paths=["config"]),
            )
        )
    )
    assert "changes.config.sql_target.dsn" in got.fields
    # The service's own user and password on another database of its server: refused too.
    same_user = other_database(own, "postgres")
    got = await refused(runs.SubmitRun(rpb.SubmitRunRequest(config=sql_config(same_user))))
    assert got.fields["config.sql_target.dsn"] == "must not use the service's credentials"


def test_dsn_identities() -> None:
    socket = identity_of("postgresql://postgres:@/batchyard?host=/srv/pg/data")
    assert socket is not None and ("/srv/pg/data", 5432) in socket.hosts
    local = identity_of("postgresql://u:p@localhost/db")
    loop = identity_of("postgres://x:y@127.0.0.1:5432/db")
    assert local is not None and loop is not None and local.same_database(loop)
    other_port = identity_of("postgresql://u:p@localhost:5433/db")
    assert other_port is not None and not local.same_database(other_port)
    multi = identity_of("postgresql://u@db1:5432,db2:5433/app")
    assert multi is not None and ("db2", 5433) in multi.hosts
