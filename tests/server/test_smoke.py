from batchyard.v1 import definition_service_pb2 as pb, job_pb2


async def test_create_and_get(definitions):
    created = await definitions.CreateDefinition(
        pb.CreateDefinitionRequest(
            definition={"name": "hello", "config": {"type": job_pb2.JOB_TYPE_SHELL, "source_location": "echo"}}
        )
    )
    got = await definitions.GetDefinition(pb.GetDefinitionRequest(definition="hello"))
    assert got.definition.uuid == created.definition.uuid
