"""A small synchronous client for DefinitionService that raises typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.protobuf import field_mask_pb2

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.errors import from_rpc_error
from batchyard.client.paging import paged
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2_grpc,
    job_pb2,
)
from batchyard.v1 import (
    definition_service_pb2 as pb,
)

Definition = definition_pb2.Definition

MAX_PAGE_SIZE = 1000


class DefinitionsClient:
    """Create, read, list, update and delete job definitions.

    A definition is referred to by its name or its uuid. Every method raises a
    `batchyard.client.errors.BatchyardError` subclass when the server says no or
    cannot be reached, and every call has a deadline of `timeout` seconds.

        with connection.channel() as ch:
            defs = DefinitionsClient(ch)
            print(defs.get("nightly-etl").version)
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
        self._timeout = timeout

    def create(self, definition: Definition) -> Definition:
        """Create `definition` (version 1) and return it as stored."""
        try:
            response = self._stub.CreateDefinition(
                pb.CreateDefinitionRequest(definition=definition), timeout=self._timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return response.definition

    def get(self, ref: str, version: int = 0) -> Definition:
        """The definition named `ref` (name or uuid), at `version` or the current one."""
        try:
            response = self._stub.GetDefinition(
                pb.GetDefinitionRequest(definition=ref, version=version), timeout=self._timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return response.definition

    def list_page(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        name_prefix: str = "",
        job_type: job_pb2.JobType.ValueType = job_pb2.JOB_TYPE_UNSPECIFIED,
    ) -> pb.ListDefinitionsResponse:
        """One page of definitions ordered by name (page_size 0: the server's default)."""
        request = pb.ListDefinitionsRequest(
            page_size=page_size, page_token=page_token, name_prefix=name_prefix, type=job_type
        )
        try:
            return self._stub.ListDefinitions(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def iter(
        self,
        *,
        limit: int | None = None,
        page_size: int = 0,
        name_prefix: str = "",
        job_type: job_pb2.JobType.ValueType = job_pb2.JOB_TYPE_UNSPECIFIED,
    ) -> Iterator[Definition]:
        """Definitions ordered by name, following page tokens, at most `limit` of them.

        `page_size` 0 asks for pages as large as `limit` needs (up to 1000), or the
        server's default when there is no limit.
        """
        return paged(
            lambda size, token: self.list_page(
                page_size=size, page_token=token, name_prefix=name_prefix, job_type=job_type
            ),
            lambda page: page.definitions,
            limit=limit,
            page_size=page_size,
            max_page_size=MAX_PAGE_SIZE,
        )

    def update(
        self,
        ref: str,
        changes: Definition,
        paths: list[str],
        *,
        expected_version: int = 0,
    ) -> Definition:
        """Replace the fields named by `paths` (e.g. "config.args") with those of `changes`.

        Bumps the version. With `expected_version`, the update applies only while the
        definition is still at that version (ConflictError otherwise).
        """
        request = pb.UpdateDefinitionRequest(
            definition=ref,
            changes=changes,
            update_mask=field_mask_pb2.FieldMask(paths=paths),
            expected_version=expected_version,
        )
        try:
            response = self._stub.UpdateDefinition(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return response.definition

    def delete(self, ref: str) -> None:
        """Delete the definition; its name becomes free for a new definition."""
        try:
            self._stub.DeleteDefinition(
                pb.DeleteDefinitionRequest(definition=ref), timeout=self._timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
