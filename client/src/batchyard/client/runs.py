"""A small synchronous client for RunService that raises typed errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.errors import DeadlineExceededError, from_rpc_error
from batchyard.client.paging import paged
from batchyard.client.results import RunResults
from batchyard.client.streams import FIRST_RETRY_SECONDS, RECONNECT_TIMEOUT, ResumableStream
from batchyard.v1 import job_pb2, run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as pb

Run = run_pb2.Run
RunStatus = run_pb2.RunStatus
JobConfig = job_pb2.JobConfig
SubmitRunRequest = pb.SubmitRunRequest
SubmitRunResponse = pb.SubmitRunResponse

MAX_PAGE_SIZE = 1000
# The largest payload the server accepts.
MAX_PAYLOAD_BYTES = 1024 * 1024

# An ad-hoc SQL run: its query is stored as this file, its result set as this result.
SQL_SOURCE_LOCATION = "query.sql"
SQL_RESULT_NAME = "result.csv"

FINISHED: frozenset[RunStatus.ValueType] = frozenset(
    {run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED}
)


def is_finished(run: Run) -> bool:
    """Whether the run is SUCCEEDED, FAILED or CANCELLED (nothing will change it again)."""
    return run.status in FINISHED


class WaitTimeoutError(TimeoutError):
    """`RunsClient.wait` gave up before the run finished; the run itself goes on.

    Attributes:
        run: the last state of the run seen.
    """

    def __init__(self, run: Run, timeout: float) -> None:
        super().__init__(f"run {run.uuid} has not finished after {timeout:g} s")
        self.run = run
        self.timeout = timeout


def submit_request(
    definition: str | None = None,
    *,
    config: JobConfig | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    queue: str | None = None,
    priority: int | None = None,
    payload: bytes = b"",
    request_id: str = "",
) -> SubmitRunRequest:
    """The SubmitRunRequest for `RunsClient.submit` (see there), e.g. for `submit_many`."""
    if (definition is None) == (config is None):
        raise ValueError("give either a definition (name or uuid) or an inline config")
    overrides = run_pb2.RunOverrides(
        args=list(args or []),
        env=dict(env or {}),
        secret_env=dict(secret_env or {}),
        queue=queue or "",
    )
    if timeout is not None:
        overrides.timeout.CopyFrom(_duration(timeout))
    if retries is not None:
        overrides.retry_strategy.CopyFrom(job_pb2.RetryStrategy(num_retries=retries))
    if priority is not None:
        overrides.priority = priority
    request = SubmitRunRequest(overrides=overrides, payload=payload, request_id=request_id)
    if config is not None:
        request.config.CopyFrom(config)
    else:
        request.definition = definition or ""
    return request


def sql_config(query: str, target: str) -> JobConfig:
    """The inline configuration of an ad-hoc SQL run of `query` against the database the
    workers know as `target`; its last result set becomes the result "result.csv"."""
    return JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=query)),
        source_location=SQL_SOURCE_LOCATION,
        sql_target=job_pb2.SqlTarget(connection=target),
    )


class RunWatcher(ResumableStream[pb.WatchRunResponse, Run]):
    """The states of a run as they change (what `RunsClient.watch` returns).

    Iterate over it for each new state (a Run whose `revision` moved); it ends after the
    run has reached SUCCEEDED, FAILED or CANCELLED, or after `cancel()` (from any
    thread). `revision` is the last revision seen: pass it as `after_revision` to a later
    `watch` to go on from there.
    """

    def __init__(
        self,
        stub: run_service_pb2_grpc.RunServiceStub,
        run_id: str,
        after_revision: int,
        *,
        reconnect_timeout: float,
        deadline: float | None = None,
    ) -> None:
        self._stub = stub
        self._run_id = run_id
        self.revision = after_revision
        super().__init__(
            self._watch,
            self._states,
            reconnect_timeout=reconnect_timeout,
            deadline=deadline,
        )

    def _watch(self, timeout: float | None) -> grpc.CallIterator[pb.WatchRunResponse]:
        request = pb.WatchRunRequest(run=self._run_id, after_revision=self.revision)
        return self._stub.WatchRun(request, timeout=timeout)

    def _states(self, response: pb.WatchRunResponse) -> Iterator[Run]:
        if response.run.revision > self.revision:  # never twice, whatever a server sends
            self.revision = response.run.revision
            yield response.run


class RunsClient:
    """Submit, read, list, cancel, delete, watch and wait for runs; get their results.

    A run is referred to by its uuid. Every method raises a
    `batchyard.client.errors.BatchyardError` subclass when the server says no or cannot
    be reached, and every call has a deadline of `timeout` seconds.

        with connection.channel() as ch:
            runs = RunsClient(ch)
            run = runs.submit("nightly-etl", args=["--day", "2024-05-01"]).run
            print(runs.wait(run.uuid, timeout=600).status)
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = run_service_pb2_grpc.RunServiceStub(channel)
        self._timeout = timeout

    def submit(
        self,
        definition: str | None = None,
        *,
        config: JobConfig | None = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        secret_env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        queue: str | None = None,
        priority: int | None = None,
        payload: bytes = b"",
        request_id: str = "",
    ) -> SubmitRunResponse:
        """Submit a run of `definition` (name or uuid; pins its current version) or of an
        inline `config` (an ad-hoc run); exactly one of the two.

        Per-run changes: `args` replace the definition's (when not empty); `env` and
        `secret_env` are merged over its own; `timeout` (seconds per attempt), `queue`
        and `priority` replace its own; `retries` replaces its whole retry strategy by
        one with that many retries and defaults for everything else. `payload` (at most
        1 MiB) is given to the job as the file at $BATCHYARD_PAYLOAD_PATH. With a
        `request_id` the call is idempotent: the same id returns the run created first
        (`deduplicated` is then true). Bad input raises InvalidArgumentError whose field
        violations name e.g. "overrides.timeout".
        """
        request = submit_request(
            definition,
            config=config,
            args=args,
            env=env,
            secret_env=secret_env,
            timeout=timeout,
            retries=retries,
            queue=queue,
            priority=priority,
            payload=payload,
            request_id=request_id,
        )
        try:
            return self._stub.SubmitRun(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def submit_many(self, requests: Iterable[SubmitRunRequest]) -> list[SubmitRunResponse]:
        """Submit many runs in one call, all or nothing (build them with `submit_request`).

        Field violations name the request, e.g. "requests[3].payload".
        """
        request = pb.BatchSubmitRunsRequest(requests=list(requests))
        try:
            response = self._stub.BatchSubmitRuns(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return list(response.responses)

    def get(self, run_id: str) -> Run:
        """The run with its attempts."""
        return self._get(run_id, self._timeout)

    def _get(self, run_id: str, timeout: float) -> Run:
        try:
            response = self._stub.GetRun(pb.GetRunRequest(run=run_id), timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return response.run

    def list_page(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        definition: str = "",
        statuses: Iterable[RunStatus.ValueType] = (),
        submitted_from: datetime | None = None,
        submitted_to: datetime | None = None,
    ) -> pb.ListRunsResponse:
        """One page of runs, newest first (page_size 0: the server's default).

        Filters: runs of `definition` (name or uuid), in one of `statuses`, submitted at
        or after `submitted_from` and before `submitted_to` (naive datetimes are UTC).
        A page token works only with the filters of the call that returned it.
        """
        request = pb.ListRunsRequest(
            page_size=page_size,
            page_token=page_token,
            definition=definition,
            statuses=list(statuses),
        )
        if submitted_from is not None:
            request.submit_time_from.CopyFrom(_timestamp(submitted_from))
        if submitted_to is not None:
            request.submit_time_to.CopyFrom(_timestamp(submitted_to))
        try:
            return self._stub.ListRuns(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def iter(
        self,
        *,
        limit: int | None = None,
        page_size: int = 0,
        definition: str = "",
        statuses: Iterable[RunStatus.ValueType] = (),
        submitted_from: datetime | None = None,
        submitted_to: datetime | None = None,
    ) -> Iterator[Run]:
        """Runs newest first, following page tokens, at most `limit` of them.

        Filters as for `list_page`. `page_size` 0 asks for pages as large as `limit`
        needs (up to 1000), or the server's default when there is no limit.
        """
        wanted = list(statuses)
        return paged(
            lambda size, token: self.list_page(
                page_size=size,
                page_token=token,
                definition=definition,
                statuses=wanted,
                submitted_from=submitted_from,
                submitted_to=submitted_to,
            ),
            lambda page: page.runs,
            limit=limit,
            page_size=page_size,
            max_page_size=MAX_PAGE_SIZE,
        )

    def cancel(self, run_id: str, reason: str = "") -> Run:
        """Cancel a run and return it: a PENDING run is CANCELLED at once; a RUNNING one
        gets `cancel_requested` and is CANCELLED once its worker has stopped the job.

        FailedPreconditionError for a finished run.
        """
        try:
            response = self._stub.CancelRun(
                pb.CancelRunRequest(run=run_id, reason=reason), timeout=self._timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return response.run

    def delete(self, run_id: str) -> None:
        """Delete a finished run with its logs and results (FailedPreconditionError if it
        has not finished)."""
        try:
            self._stub.DeleteRun(pb.DeleteRunRequest(run=run_id), timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def results(self, run_id: str, *, page_size: int = 0) -> RunResults:
        """The run's result assets (those of its latest attempt), ordered by name, with
        `download_file` and `download_files` (see RunResults). Lists every page at once
        (`page_size` per call, 0: the server's default). NotFoundError for an unknown run;
        an empty RunResults for a run that has none (yet).
        """
        return RunResults.fetch(self._stub, run_id, page_size=page_size, timeout=self._timeout)

    def watch(
        self,
        run_id: str,
        after_revision: int = 0,
        *,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> RunWatcher:
        """Each state of the run as it changes (status, attempts, progress, cancel
        requested), until it has ended: first its current state (if its revision is
        greater than `after_revision`), then each new one, in order.

        When the stream breaks (the server restarts or cannot be reached) it is reopened
        after the last revision seen, so no state is repeated; the pauses between tries
        grow from 0.2 s to 5 s, and after `reconnect_timeout` seconds of failing
        (default 5 min) the last UnavailableError is raised. NotFoundError for an
        unknown run. The returned iterator has `cancel()` and `revision`.
        """
        return RunWatcher(self._stub, run_id, after_revision, reconnect_timeout=reconnect_timeout)

    def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll: Callable[[Run], None] | None = None,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> Run:
        """Wait until the run is SUCCEEDED, FAILED or CANCELLED and return it.

        `poll` is called with every new state of the run (status, attempt, progress,
        cancel requested), the first being the state when the wait starts. After
        `timeout` seconds (None: no limit) WaitTimeoutError is raised; the run goes on.
        The states come from WatchRun as they happen; a server that restarts or cannot
        be reached for a while is watched again (see `watch`), and one that stays
        unreachable for `reconnect_timeout` seconds raises UnavailableError.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last = self.get(run_id)
        if poll is not None:
            poll(last)
        while not is_finished(last):
            watcher = RunWatcher(
                self._stub,
                run_id,
                last.revision,
                reconnect_timeout=reconnect_timeout,
                deadline=deadline,
            )
            try:
                for run in watcher:
                    last = run
                    if poll is not None:
                        poll(run)
            except DeadlineExceededError:
                if deadline is None:
                    raise  # not our deadline: a proxy's
                raise WaitTimeoutError(last, timeout or 0.0) from None
            if not is_finished(last):  # the stream ended early (a server off contract)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise WaitTimeoutError(last, timeout or 0.0)
                time.sleep(FIRST_RETRY_SECONDS if left is None else min(FIRST_RETRY_SECONDS, left))
        return last


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def _timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(when)
    return value
