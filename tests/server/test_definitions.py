"""DefinitionService against a real server and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from batchyard.v1 import definition_pb2, job_pb2
from batchyard.v1 import definition_service_pb2 as pb
from tests.rpc import failure

SECRET = "canary-Zq9-secret-value"


def make(name: str = "etl", description: str = "", **config: Any) -> definition_pb2.Definition:
    base: dict[str, Any] = {
        "type": "JOB_TYPE_PYTHON",
        "source": {"workspace": {"path": "jobs"}},
        "sourceLocation": "etl/main.py",
    }
    base.update(config)
    base = {k: v for k, v in base.items() if v is not None}
    doc = {"name": name, "description": description, "config": base}
    return json_format.ParseDict(doc, definition_pb2.Definition())


async def create(stub, definition: definition_pb2.Definition) -> definition_pb2.Definition:
    response = await stub.CreateDefinition(pb.CreateDefinitionRequest(definition=definition))
    return response.definition


async def expect_error(call, code: grpc.StatusCode):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def test_create_returns_the_stored_definition(definitions):
    created = await create(
        definitions,
        make(args=["--day", "2026-11-21"], env={"MODE": "full"}, timeout="90s", priority=5),
    )
    assert created.name == "etl" and created.version == 1 and created.workspace == "default"
    assert len(created.uuid) == 36
    assert list(created.config.args) == ["--day", "2026-11-21"]
    assert created.config.env["MODE"] == "full"
    assert created.config.timeout.seconds == 90
    assert created.config.queue == "default"
    assert created.config.priority == 5
    assert created.create_time.seconds > 0


async def test_get_by_name_and_by_uuid(definitions):
    created = await create(definitions, make())
    by_name = await definitions.GetDefinition(pb.GetDefinitionRequest(definition="etl"))
    by_uuid = await definitions.GetDefinition(pb.GetDefinitionRequest(definition=created.uuid))
    assert by_name.definition == by_uuid.definition == created


async def test_every_source_kind_round_trips(definitions):
    sources = {
        "ws": {"workspace": {"path": "a/b"}},
        "git": {
            "git": {"repoUrl": "https://example.com/r.git", "reference": "v1", "username": "u"}
        },
        "s3": {
            "s3": {
                "uri": "s3://bucket/jobs/",
                "region": "eu-west-1",
                "endpointUrl": "http://127.0.0.1:9000",
            }
        },
        "inline": {"inline": {"text": "print('hi')\n"}},
    }
    for name, source in sources.items():
        created = await create(definitions, make(name, source=source))
        got = (await definitions.GetDefinition(pb.GetDefinitionRequest(definition=name))).definition
        assert got.config.source == created.config.source
        assert json_format.MessageToDict(got.config.source) == source
    inline = (
        await definitions.GetDefinition(pb.GetDefinitionRequest(definition="inline"))
    ).definition
    assert inline.config.source.inline.text == "print('hi')\n"


async def test_sql_and_shell_jobs(definitions):
    sql = await create(
        definitions,
        make(
            "report",
            type="JOB_TYPE_SQL",
            sourceLocation="q.sql",
            sqlTarget={"connection": "warehouse"},
        ),
    )
    assert sql.config.sql_target.connection == "warehouse"
    shell = await create(
        definitions,
        json_format.ParseDict(
            {"name": "touch", "config": {"type": "JOB_TYPE_SHELL", "sourceLocation": "true"}},
            definition_pb2.Definition(),
        ),
    )
    assert not shell.config.HasField("source")


async def test_duplicate_name_is_already_exists_and_writes_nothing(definitions):
    await create(definitions, make())
    got = await expect_error(
        definitions.CreateDefinition(pb.CreateDefinitionRequest(definition=make())),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert got.reason == "DEFINITION_EXISTS"
    listed = await definitions.ListDefinitions(pb.ListDefinitionsRequest())
    assert len(listed.definitions) == 1


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (make(""), "definition.name"),
        (make("x" * 101), "definition.name"),
        (make("bad name!"), "definition.name"),
        (make("-leading"), "definition.name"),
        (make("6f748a1b-251c-48b5-935a-a1974c3dbf7b"), "definition.name"),
        (make(type="JOB_TYPE_UNSPECIFIED"), "definition.config.type"),
        (make(type=42), "definition.config.type"),
        (make(source=None), "definition.config.source"),
        (make(sourceLocation="../escape.py"), "definition.config.source_location"),
        (make(sourceLocation="/etc/passwd"), "definition.config.source_location"),
        (make(sourceLocation=""), "definition.config.source_location"),
        (
            make(source={"workspace": {"path": "../../etc"}}),
            "definition.config.source.workspace.path",
        ),
        (make(source={"workspace": {"path": "/abs"}}), "definition.config.source.workspace.path"),
        (make(retryStrategy={"numRetries": -1}), "definition.config.retry_strategy.num_retries"),
        (make(retryStrategy={"numRetries": 101}), "definition.config.retry_strategy.num_retries"),
        (
            make(retryStrategy={"delayBetweenRetries": "-5s"}),
            "definition.config.retry_strategy.delay_between_retries",
        ),
        (
            make(
                retryStrategy={
                    "exitCodeRules": [{"exitCodes": [0], "action": "EXIT_CODE_ACTION_EXIT"}]
                }
            ),
            "definition.config.retry_strategy.exit_code_rules[0].exit_codes",
        ),
        (
            make(retryStrategy={"exitCodeRules": [{"exitCodes": [3]}]}),
            "definition.config.retry_strategy.exit_code_rules[0].action",
        ),
        (make(timeout="0s"), "definition.config.timeout"),
        (make(timeout="-10s"), "definition.config.timeout"),
        (make(timeout="700000s"), "definition.config.timeout"),
        (make(source={"git": {"repoUrl": "not a url"}}), "definition.config.source.git.repo_url"),
        (make(source={"git": {"repoUrl": "-uhack"}}), "definition.config.source.git.repo_url"),
        (
            make(source={"git": {"repoUrl": "ftp://host/r.git"}}),
            "definition.config.source.git.repo_url",
        ),
        (
            make(source={"git": {"repoUrl": "https://user:pw@host/r.git"}}),
            "definition.config.source.git.repo_url",
        ),
        (make(source={"git": {"repoUrl": ""}}), "definition.config.source.git.repo_url"),
        (
            make(source={"git": {"repoUrl": "https://h/r.git", "reference": "--upload-pack=x"}}),
            "definition.config.source.git.reference",
        ),
        (make(source={"s3": {"uri": "http://bucket/key"}}), "definition.config.source.s3.uri"),
        (make(source={"s3": {"uri": "s3://B/key"}}), "definition.config.source.s3.uri"),
        (
            make(source={"s3": {"uri": "s3://bucket/k", "endpointUrl": "ftp://x"}}),
            "definition.config.source.s3.endpoint_url",
        ),
        (
            make(source={"inline": {"text": "x" * (1024 * 1024 + 1)}}),
            "definition.config.source.inline.text",
        ),
        (make(env={"BAD-KEY": "v"}), "definition.config.env.BAD-KEY"),
        (make(env={"BATCHYARD_RUN_ID": "v"}), "definition.config.env.BATCHYARD_RUN_ID"),
        (make(queue="no spaces"), "definition.config.queue"),
        (make(priority=5000), "definition.config.priority"),
        (make(resources={"memoryBytes": "-1"}), "definition.config.resources.memory_bytes"),
        (make(type="JOB_TYPE_SQL", sourceLocation="q.sql"), "definition.config.sql_target"),
        (make(sqlTarget={"connection": "w"}), "definition.config.sql_target"),
        (
            make(type="JOB_TYPE_SQL", sourceLocation="q.sql", sqlTarget={"dsn": "mysql://x"}),
            "definition.config.sql_target.dsn",
        ),
    ],
)
async def test_bad_field_is_invalid_argument_naming_it(definitions, definition, field):
    got = await expect_error(
        definitions.CreateDefinition(pb.CreateDefinitionRequest(definition=definition)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert got.reason == "INVALID_FIELD"
    assert field in got.fields, got.fields
    listed = await definitions.ListDefinitions(pb.ListDefinitionsRequest())
    assert list(listed.definitions) == []


async def test_missing_config_and_missing_definition(definitions):
    got = await expect_error(
        definitions.CreateDefinition(pb.CreateDefinitionRequest()), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "definition" in got.fields
    got = await expect_error(
        definitions.CreateDefinition(
            pb.CreateDefinitionRequest(definition=definition_pb2.Definition(name="x"))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "definition.config" in got.fields


async def test_unknown_definition_is_not_found(definitions):
    for ref in ("nope", "6f748a1b-251c-48b5-935a-a1974c3dbf7b"):
        got = await expect_error(
            definitions.GetDefinition(pb.GetDefinitionRequest(definition=ref)),
            grpc.StatusCode.NOT_FOUND,
        )
        assert got.reason == "DEFINITION_NOT_FOUND"
        await expect_error(
            definitions.DeleteDefinition(pb.DeleteDefinitionRequest(definition=ref)),
            grpc.StatusCode.NOT_FOUND,
        )
    await expect_error(
        definitions.GetDefinition(pb.GetDefinitionRequest(definition="")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_update_with_mask_bumps_version_and_keeps_history(definitions):
    created = await create(definitions, make(args=["a"], description="first"))
    changes = make(args=["b", "c"])
    changes.description = "ignored: not in the mask"
    updated = (
        await definitions.UpdateDefinition(
            pb.UpdateDefinitionRequest(
                definition="etl",
                changes=changes,
                update_mask=field_mask_pb2.FieldMask(paths=["config.args"]),
            )
        )
    ).definition
    assert updated.version == 2 and updated.uuid == created.uuid
    assert list(updated.config.args) == ["b", "c"]
    assert updated.description == "first"
    v1 = (
        await definitions.GetDefinition(pb.GetDefinitionRequest(definition="etl", version=1))
    ).definition
    assert list(v1.config.args) == ["a"] and v1.version == 1
    current = (
        await definitions.GetDefinition(pb.GetDefinitionRequest(definition=created.uuid))
    ).definition
    assert current.version == 2
    await expect_error(
        definitions.GetDefinition(pb.GetDefinitionRequest(definition="etl", version=3)),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_update_rename_and_whole_config(definitions):
    await create(definitions, make())
    await create(definitions, make("taken"))
    renamed = (
        await definitions.UpdateDefinition(
            pb.UpdateDefinitionRequest(
                definition="etl",
                changes=make("etl2", type="JOB_TYPE_SHELL", source=None, sourceLocation="true"),
                update_mask=field_mask_pb2.FieldMask(paths=["name", "config"]),
            )
        )
    ).definition
    assert renamed.name == "etl2" and renamed.config.type == job_pb2.JOB_TYPE_SHELL
    await expect_error(
        definitions.GetDefinition(pb.GetDefinitionRequest(definition="etl")),
        grpc.StatusCode.NOT_FOUND,
    )
    got = await expect_error(
        definitions.UpdateDefinition(
            pb.UpdateDefinitionRequest(
                definition="etl2",
                changes=make("taken"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert got.reason == "DEFINITION_EXISTS"


async def test_update_errors_change_nothing(definitions):
    await create(definitions, make(timeout="60s"))
    cases = [
        ([], "update_mask"),
        (["config.bogus"], "update_mask"),
        (["config.timeout"], "changes.config.timeout"),
    ]
    for paths, field in cases:
        got = await expect_error(
            definitions.UpdateDefinition(
                pb.UpdateDefinitionRequest(
                    definition="etl",
                    changes=make(timeout="-1s"),
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert field in got.fields, got.fields
    got = await expect_error(
        definitions.UpdateDefinition(
            pb.UpdateDefinitionRequest(
                definition="etl",
                changes=make(timeout="30s"),
                update_mask=field_mask_pb2.FieldMask(paths=["config.timeout"]),
                expected_version=7,
            )
        ),
        grpc.StatusCode.ABORTED,
    )
    assert got.reason == "VERSION_CONFLICT"
    current = (
        await definitions.GetDefinition(pb.GetDefinitionRequest(definition="etl"))
    ).definition
    assert current.version == 1 and current.config.timeout.seconds == 60


async def test_deleted_name_is_reusable_with_a_new_uuid(definitions):
    first = await create(definitions, make())
    await definitions.DeleteDefinition(pb.DeleteDefinitionRequest(definition="etl"))
    await expect_error(
        definitions.GetDefinition(pb.GetDefinitionRequest(definition=first.uuid)),
        grpc.StatusCode.NOT_FOUND,
    )
    second = await create(definitions, make())
    assert second.uuid != first.uuid and second.version == 1
    await definitions.DeleteDefinition(pb.DeleteDefinitionRequest(definition=second.uuid))
    listed = await definitions.ListDefinitions(pb.ListDefinitionsRequest())
    assert list(listed.definitions) == []


async def test_secrets_are_write_only(definitions):
    definition = make(
        "secretive",
        secretEnv={"API_KEY": SECRET},
        source={"git": {"repoUrl": "https://git.example.com/r.git", "accessToken": SECRET}},
    )
    created = await create(definitions, definition)
    got = (
        await definitions.GetDefinition(pb.GetDefinitionRequest(definition="secretive"))
    ).definition
    listed = await definitions.ListDefinitions(pb.ListDefinitionsRequest())
    for message in (created, got, *listed.definitions):
        assert SECRET not in str(message)
        assert SECRET.encode() not in message.SerializeToString()
    assert list(got.config.secret_env_names) == ["API_KEY"]
    assert got.config.source.git.has_access_token
    # Editing what Get returned (secrets empty) keeps the stored secrets...
    kept = (
        await definitions.UpdateDefinition(
            pb.UpdateDefinitionRequest(
                definition="secretive",
                changes=got,
                update_mask=field_mask_pb2.FieldMask(paths=["config"]),
            )
        )
    ).definition
    assert (
        list(kept.config.secret_env_names) == ["API_KEY"]
        and kept.config.source.git.has_access_token
    )
    # ...and naming a secret's path clears or replaces it.
    cleared = (
        await definitions.UpdateDefinition(
            pb.UpdateDefinitionRequest(
                definition="secretive",
                changes=definition_pb2.Definition(),
                update_mask=field_mask_pb2.FieldMask(
                    paths=["config.secret_env", "config.source.git.access_token"]
                ),
            )
        )
    ).definition
    assert list(cleared.config.secret_env_names) == []
    assert not cleared.config.source.git.has_access_token


async def test_secret_values_never_appear_in_errors(definitions):
    definition = make(secretEnv={"TOKEN": SECRET}, timeout="-1s")
    got = await expect_error(
        definitions.CreateDefinition(pb.CreateDefinitionRequest(definition=definition)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert SECRET not in got.message and SECRET not in str(got.fields)


async def test_list_filters_by_prefix_and_type(definitions):
    await create(definitions, make("etl-a"))
    await create(
        definitions, make("etl-b", type="JOB_TYPE_SHELL", source=None, sourceLocation="true")
    )
    await create(definitions, make("report"))
    names = lambda r: [d.name for d in r.definitions]  # noqa: E731
    assert names(
        await definitions.ListDefinitions(pb.ListDefinitionsRequest(name_prefix="etl-"))
    ) == [
        "etl-a",
        "etl-b",
    ]
    assert names(
        await definitions.ListDefinitions(pb.ListDefinitionsRequest(type=job_pb2.JOB_TYPE_SHELL))
    ) == ["etl-b"]
    await expect_error(
        definitions.ListDefinitions(pb.ListDefinitionsRequest(type=99)),  # type: ignore[arg-type]
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_paging_is_stable_under_concurrent_inserts(definitions):
    for i in range(0, 40, 2):
        await create(definitions, make(f"job-{i:03d}"))
    seen: list[str] = []
    token = ""
    page_no = 0
    while True:
        page = await definitions.ListDefinitions(
            pb.ListDefinitionsRequest(page_size=7, page_token=token)
        )
        seen += [d.name for d in page.definitions]
        # Others insert while we page: names before and after our position.
        await asyncio.gather(
            *(
                create(definitions, make(f"job-{i:03d}"))
                for i in range(1 + page_no * 6, 7 + page_no * 6, 2)
                if i < 40
            )
        )
        page_no += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen), "pages come in name order"
    assert len(seen) == len(set(seen)), "no definition is listed twice"
    assert {f"job-{i:03d}" for i in range(0, 40, 2)} <= set(seen), "nothing that existed is skipped"


async def test_page_token_is_checked(definitions):
    for i in range(3):
        await create(definitions, make(f"j{i}"))
    page = await definitions.ListDefinitions(pb.ListDefinitionsRequest(page_size=1))
    assert page.next_page_token
    got = await expect_error(
        definitions.ListDefinitions(pb.ListDefinitionsRequest(page_size=1, page_token="garbage!")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert got.reason == "INVALID_PAGE_TOKEN"
    got = await expect_error(
        definitions.ListDefinitions(
            pb.ListDefinitionsRequest(page_size=1, page_token=page.next_page_token, name_prefix="j")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert got.reason == "INVALID_PAGE_TOKEN"
    await expect_error(
        definitions.ListDefinitions(pb.ListDefinitionsRequest(page_size=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
