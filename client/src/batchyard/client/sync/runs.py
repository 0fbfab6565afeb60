"""`RunsClient`: the RunService calls of the synchronous face, one thin method each (a
request from `batchyard.client.core.requests`, made through the call helper); `Runs`
and `Run` are built on it, and it answers with the messages themselves."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from batchyard.client.core.requests import list_runs, submit_request
from batchyard.client.core.streams import (
    FIRST_RETRY_SECONDS,
    RECONNECT_TIMEOUT,
    OutageListener,
    log_outage,
)
from batchyard.client.core.views import is_finished
from batchyard.client.errors import DeadlineExceededError, WaitTimeoutError
from batchyard.client.sync.call import OnChannel
from batchyard.client.sync.paging import listing
from batchyard.client.sync.results import RunResults
from batchyard.client.sync.streams import RunWatcher, until_reachable
from batchyard.v1 import run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as pb


class RunsClient(OnChannel[run_service_pb2_grpc.RunServiceStub]):
    """Submit, read, list, cancel, delete, watch and wait for runs; get their results.

    A run is referred to by its uuid. Every method raises a
    `batchyard.client.errors.BatchyardError` subclass when the server says no or cannot
    be reached, and every call has a deadline of `timeout` seconds (reads are retried
    as `call` says; none without one).

        with connection.channel() as ch:
            runs = RunsClient(ch)
            run = runs.submit("nightly-etl", args=["--day", "2024-05-01"]).run
            print(runs.wait(run.uuid, timeout=600).status)
    """

    @staticmethod
    def _stub_on(channel: grpc.Channel) -> run_service_pb2_grpc.RunServiceStub:
        return run_service_pb2_grpc.RunServiceStub(channel)

    def submit(self, definition: str | None = None, **options: Any) -> pb.SubmitRunResponse:
        """Submit a run of `definition` or of an inline `config`, with the options of
        `submit_request` (see `Runs.submit`). With a `request_id` it is idempotent,
        and retried when the server cannot be reached. Bad input raises
        InvalidArgumentError whose field violations name e.g. "overrides.timeout"."""
        request = submit_request(definition, **options)
        return self._call(self._stub.SubmitRun, request, idempotent=bool(request.request_id))

    def submit_many(self, requests: Iterable[pb.SubmitRunRequest]) -> list[pb.SubmitRunResponse]:
        """Submit many runs in one call, all or nothing (build them with `submit_request`).

        Field violations name the request, e.g. "requests[3].payload".
        """
        request = pb.BatchSubmitRunsRequest(requests=list(requests))
        return list(self._call(self._stub.BatchSubmitRuns, request).responses)

    def get(self, run_id: str) -> run_pb2.Run:
        """The run with its attempts."""
        request = pb.GetRunRequest(run=run_id)
        return self._call(self._stub.GetRun, request, idempotent=True).run

    def iter(
        self, *, limit: int | None = None, page_size: int = 0, **filters: Any
    ) -> Iterator[run_pb2.Run]:
        """Runs newest first, following page tokens, at most `limit` of them.

        Filters (see `list_runs`): `definition` (name or uuid), `statuses`,
        `submitted_from`, `submitted_to`. `page_size` 0 asks for pages as large as
        `limit` needs (up to 1000), or the server's default when there is no limit.
        """
        spec = list_runs(**filters)
        return iter(
            listing(self._call, self._stub.ListRuns, spec, limit=limit, page_size=page_size)
        )

    def cancel(self, run_id: str, reason: str = "") -> run_pb2.Run:
        """Cancel a run and return it: a PENDING run is CANCELLED at once; a RUNNING one
        gets `cancel_requested` and is CANCELLED once its worker has stopped the job.

        FailedPreconditionError for a finished run.
        """
        request = pb.CancelRunRequest(run=run_id, reason=reason)
        return self._call(self._stub.CancelRun, request).run

    def delete(self, run_id: str) -> None:
        """Delete a finished run with its logs and results (FailedPreconditionError if it
        has not finished)."""
        self._call(self._stub.DeleteRun, pb.DeleteRunRequest(run=run_id))

    def results(self, run_id: str, *, page_size: int = 0) -> RunResults:
        """The run's result assets (those of its latest attempt), ordered by name, with
        `download_file` and `download_files` (see RunResults). Lists every page at once
        (`page_size` per call, 0: the server's default). NotFoundError for an unknown run;
        an empty RunResults for a run that has none (yet).
        """
        return RunResults.fetch(self._stub, run_id, page_size=page_size, call=self._call)

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
        poll: Callable[[run_pb2.Run], None] | None = None,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        on_outage: OutageListener | None = None,
    ) -> run_pb2.Run:
        """Wait until the run is SUCCEEDED, FAILED or CANCELLED and return it.

        `poll` is called with every new state of the run (status, attempt, progress,
        cancel requested), the first being the state when the wait starts. After
        `timeout` seconds (None: no limit) WaitTimeoutError is raised; the run goes on.
        The states come from WatchRun as they happen; a server that restarts or cannot
        be reached for a while is watched again (see `watch`), and one that stays
        unreachable for `reconnect_timeout` seconds raises UnavailableError (also when
        it is unreachable as the wait starts). Meanwhile `on_outage` is told (None:
        a warning on the `batchyard.client` logger, "server unreachable, retrying
        (0:00:12)", then "server reachable again").
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = poll or (lambda _: None)
        try:
            last = until_reachable(
                lambda: self.get(run_id),
                reconnect_timeout=reconnect_timeout,
                on_outage=on_outage or log_outage,
                deadline=deadline,
            )
        except DeadlineExceededError:
            if deadline is None:
                raise
            raise WaitTimeoutError(run_pb2.Run(uuid=run_id), timeout or 0.0) from None
        seen(last)
        while not is_finished(last):
            watcher = RunWatcher(
                self._stub,
                run_id,
                last.revision,
                reconnect_timeout=reconnect_timeout,
                deadline=deadline,
                on_outage=on_outage or log_outage,
            )
            try:
                for run in watcher:
                    last = run
                    seen(run)
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
