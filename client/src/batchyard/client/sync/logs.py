"""`client.logs`: read and follow run logs (the synchronous face; the requests are
built by `batchyard.client.core.logs.LogReader`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from batchyard.client.core.logs import LogReader
from batchyard.client.core.streams import OutageListener
from batchyard.client.sync.call import OnChannel
from batchyard.client.sync.streams import LogFollower
from batchyard.v1 import log_pb2, log_service_pb2_grpc
from batchyard.v1 import log_service_pb2 as pb


class LogsClient(
    LogReader[Iterator[log_pb2.LogEntry], LogFollower],
    OnChannel[log_service_pb2_grpc.LogServiceStub],
):
    """Read and follow run logs (`client.logs`; see `LogReader` for `iter` and `follow`).
    Unary calls have a deadline of `timeout` seconds (reads are retried as `call`
    says; none without one).

        with connection.channel() as ch:
            logs = LogsClient(ch)
            for entry in logs.follow(run_id, min_level="warning"):
                print(entry.seq, entry.message)
    """

    @staticmethod
    def _stub_on(channel: grpc.Channel) -> log_service_pb2_grpc.LogServiceStub:
        return log_service_pb2_grpc.LogServiceStub(channel)

    def page(
        self, run_id: str, *, page_size: int = 0, page_token: str = "", **filters: Any
    ) -> pb.GetLogsResponse:
        """One page of stored entries, with the filters of `iter` (page_size 0: the
        server's default, 1000; at most 10,000). A `page_token` (from
        `next_page_token`, empty when nothing more is stored now) works only with the
        filters of the call that returned it, and wins over `after`. `last_position`
        is where to go on from later; `run_finished` says whether entries may still be
        added.
        """
        request = self._page_request(run_id, page_size, page_token, **filters)
        return self._call(self._stub.GetLogs, request, idempotent=True)

    def _pages(self, request: pb.GetLogsRequest) -> Iterator[log_pb2.LogEntry]:
        while True:
            page = self._call(self._stub.GetLogs, request, idempotent=True)
            yield from page.entries
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def _follower(
        self,
        request: pb.TailLogsRequest,
        reconnect_timeout: float,
        on_outage: OutageListener | None = None,
    ) -> LogFollower:
        return LogFollower(
            self._stub, request, reconnect_timeout=reconnect_timeout, on_outage=on_outage
        )
