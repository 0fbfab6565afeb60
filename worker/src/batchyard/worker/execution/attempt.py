"""The execution of one attempt, with no server involved.

:class:`Execution` takes an attempt directory from the one provider
(:mod:`~batchyard.worker.execution.directories`), makes the source ready through its port
(:mod:`batchyard.worker.sources.port`; the execution never asks which kind it is), runs the
program (:mod:`~batchyard.worker.execution.process`), turns its output into log records and
progress (:mod:`batchyard.worker.output`), enforces the timeout, obeys stop requests, kills
the whole process group at the end, and returns an :class:`~batchyard.worker.outcome.Outcome`::

    async with Execution(spec, options, reaper=reaper) as execution:
        outcome = await execution.run()       # execution.progress while it runs
        ...                                   # execution.paths.output: the job's results
    # the attempt directory is emptied here

The attempt's log (records numbered by :class:`~batchyard.worker.output.collector.OutputCollector`)
goes to an in-memory tail — a failed attempt's message quotes its last stderr lines — and to
the ``sink`` given (the log shipper of a leased attempt). The worker's own system entries
say: which worker started the attempt, that the source is ready (or why it is not), the
command started, a timeout reached, a cancel or lease loss received, the signals sent, the
output dropped over the caps, the results stored or skipped, and how the attempt ended
(the words: :mod:`~batchyard.worker.execution.messages`).

Sources: a stop request during the fetch cancels it, and the job does not start.

Results: once the job's process group is dead, the files it left in ``paths.output`` go to
the artifact store (:mod:`batchyard.worker.results`), unless the worker lost the lease or
is shutting down; the outcome carries them. An empty output directory costs one directory
read on the event loop, nothing more. A lost lease or a shutdown during the upload cancels
it (a cancel request does not: the job has ended already, its results are stored).

Stopping (timeout, cancel, shutdown): SIGTERM to the process group, ``kill_grace`` seconds
for the leader to exit, then SIGKILL to the group. A lost lease skips the grace: SIGKILL at
once. Whatever happens — exit, stop, an exception, cancellation of ``run()`` — the group is
SIGKILLed before ``run()`` returns, so no grandchild outlives its attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from batchyard.v1 import task_pb2
from batchyard.worker import outcome as outcomes
from batchyard.worker.execution.cgroups import AttemptCgroup, remove_when_empty
from batchyard.worker.execution.command import Command, build_command, job_environment
from batchyard.worker.execution.directories import AttemptPaths
from batchyard.worker.execution.job_users import hand_over
from batchyard.worker.execution.limits import (
    ResourceLimits,
    attempt_limits,
    limited_command,
)
from batchyard.worker.execution.messages import (
    describe_job,
    ending_level,
    masked,
    program,
    started_message,
    stop_message,
    with_stderr,
)
from batchyard.worker.execution.options import AttemptSpec, ExecutionOptions
from batchyard.worker.execution.process import JobProcess
from batchyard.worker.execution.sql_targets import DSN_VARIABLE
from batchyard.worker.execution.stopping import Stops, unless
from batchyard.worker.execution.supervision import Supervision
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.output.collector import FanOutSink, Level, LogSink, OutputCollector
from batchyard.worker.output.masking import Masker, dsn_passwords, use_in_process_log
from batchyard.worker.output.tail import TailSink
from batchyard.worker.reaper.client import Reaper
from batchyard.worker.results.artifacts import ArtifactStore, UploadError
from batchyard.worker.results.store import has_output, store_results
from batchyard.worker.sources.catalog import open_source
from batchyard.worker.sources.port import Source, SourceError

__all__ = ["AttemptSpec", "Execution", "ExecutionOptions"]

_log = structlog.get_logger(__name__)


class Execution:
    """One attempt of one run: directory, source, process, output, outcome."""

    def __init__(
        self,
        spec: AttemptSpec,
        options: ExecutionOptions,
        *,
        reaper: Reaper | None = None,
        sink: LogSink | None = None,
    ) -> None:
        self.spec = spec
        self._options = options
        self._directories = options.attempt_directories
        self._paths: AttemptPaths | None = None
        self._reaper = reaper
        self._sink = sink
        self._collector: OutputCollector | None = None
        self._stops = Stops()
        self._started = False
        self._masker = Masker.for_job(spec.config)
        """The job's secrets, masked in its log and in the worker's process log."""
        self._limits = ResourceLimits()

    async def __aenter__(self) -> Self:
        use_in_process_log(self._masker)  # this task and those it starts work for the job
        self._paths = await self._directories.acquire(self.spec.payload)
        if self._reaper is not None:
            self._reaper.track_dir(self._paths.root)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.remove()

    @property
    def paths(self) -> AttemptPaths:
        """The attempt's directory (while the execution is entered)."""
        if self._paths is None:
            raise RuntimeError("the execution has no directory: use it in 'async with'")
        return self._paths

    @property
    def progress(self) -> int | None:
        """The latest progress the job reported (0-100), if any."""
        return None if self._collector is None else self._collector.progress

    @property
    def tasks(self) -> task_pb2.TaskSummary | None:
        """The latest task summary the job reported (``::tasks``), if any."""
        return None if self._collector is None else self._collector.tasks

    @property
    def timeout(self) -> float:
        """The attempt's time limit in seconds."""
        config = self.spec.config
        if config.HasField("timeout"):
            seconds = config.timeout.ToTimedelta().total_seconds()
            if seconds > 0:
                return seconds
        return self._options.default_timeout

    def stop(self, reason: StopReason) -> None:
        """Asks the job to stop; the first reason wins, but a lost lease always kills now."""
        self._stops.stop(reason)

    async def run(self) -> Outcome:
        """Executes the attempt once and returns how it ended."""
        if self._started:
            raise RuntimeError("an Execution runs only once")
        self._started = True
        tail = TailSink()  # failure messages quote the last stderr lines
        sink: LogSink = tail if self._sink is None else FanOutSink(tail, self._sink)
        collector = OutputCollector(
            sink,
            max_line_bytes=self._options.max_line_bytes,
            max_output_bytes=self._max_output_bytes(),
            max_output_lines=self._options.max_output_lines,
            masker=self._masker,
        )
        self._collector = collector
        try:
            spec = self.spec
            collector.system(started_message(spec.run, spec.attempt, self._options.worker_id))
            outcome = await self._execute(collector)
            collector.finish()  # the last partial lines, the note on dropped output
            store = self._options.artifacts
            # An empty output directory (a trivial run) costs this one directory read.
            if store is not None and outcome.reportable and has_output(self.paths.output):
                outcome = await self._store_results(store, outcome, collector)
            collector.system(f"attempt ended: {outcome.message}", ending_level(outcome))
            return masked(with_stderr(outcome, tail), collector.masker)
        finally:
            collector.close()

    async def remove(self) -> None:
        """Empties the attempt directory for reuse (idempotent)."""
        paths, self._paths = self._paths, None
        if paths is None:
            return
        await self._directories.release(paths)
        if self._reaper is not None:
            self._reaper.release_dir(paths.root)

    def _max_output_bytes(self) -> int:
        configured = self.spec.config.resources.output_bytes
        return configured if configured > 0 else self._options.max_output_bytes

    async def _execute(self, collector: OutputCollector) -> Outcome:
        prepared = await self._prepare(collector)
        if isinstance(prepared, Outcome):
            return prepared
        command = self._limited(prepared, collector)
        collector.system(f"starting: {describe_job(self.spec.config)}")
        cgroup = None
        try:
            cgroup = self._new_cgroup()
            process = await JobProcess.start(
                command, collector.feed, collector.end, self._tracker(cgroup), cgroup
            )
        except (OSError, ValueError) as exc:
            if cgroup is not None:
                await self._remove_cgroup(cgroup)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            message = f"cannot start {program(self.spec.config)!r}: {reason}"
            collector.system(message, Level.ERROR)
            return outcomes.source_unavailable(message)
        try:
            return await self._supervise(process, collector)
        finally:
            if cgroup is not None:
                await asyncio.shield(self._remove_cgroup(cgroup))

    def _new_cgroup(self) -> AttemptCgroup | None:
        """The attempt's cgroup (None in process-group mode), known to the reaper."""
        tree = self._options.cgroups
        if tree is None:
            return None
        cgroup = tree.create()
        if self._reaper is not None:
            self._reaper.track_cgroup(cgroup.path)
        return cgroup

    def _tracker(self, cgroup: AttemptCgroup | None) -> Callable[[int], None] | None:
        """What tells the reaper about the job's process group: nothing with a cgroup,
        which holds the group and every escapee of it."""
        if self._reaper is None or cgroup is not None:
            return None
        return self._reaper.track_group

    async def _remove_cgroup(self, cgroup: AttemptCgroup) -> None:
        if await remove_when_empty(cgroup):
            if self._reaper is not None:
                self._reaper.release_cgroup(cgroup.path)
        else:
            _log.warning("cgroup_busy", cgroup=str(cgroup.path))  # the reaper has it

    async def _supervise(self, process: JobProcess, collector: OutputCollector) -> Outcome:
        supervision = Supervision(
            process,
            collector,
            self._stops,
            timeout=self.timeout,
            kill_grace=self._options.kill_grace,
            drain_timeout=self._options.drain_timeout,
            limits=self._limits,
            reaper=self._reaper if process.cgroup is None else None,
        )
        return await supervision.run()

    async def _prepare(self, collector: OutputCollector) -> Command | Outcome:
        """The source fetched and the command built, or the outcome of an attempt that does
        not start (its source unavailable, a stop request)."""
        options = self._options
        try:
            source = open_source(
                self.spec.config,
                options.sources,
                workspace_root=options.workspace_root,
                state_dir=options.state_dir,
                time_left=self.timeout,
            )

            def note(message: str) -> None:
                collector.system(message, Level.WARNING)

            fetch = await unless(self._stops.requested, source.fetch(self.paths.source, note))
            if (stop := self._stops.reason) is not None:  # stopped before or during the fetch
                return self._not_starting(stop, collector)
            command = self._mask_target(await self._command(source, fetch.result()), collector)
        except SourceError as exc:
            collector.system(f"source unavailable: {exc}", Level.ERROR)
            return outcomes.source_unavailable(str(exc))
        ready = source.describe()
        if ready:
            collector.system(ready)
        if (stop := self._stops.reason) is not None:
            return self._not_starting(stop, collector)
        return command

    async def _command(self, source: Source, root: Path | None) -> Command:
        """The job's command, once its source is ready in ``root``."""
        config, paths = self.spec.config, self.paths
        if paths.uid is not None and source.writes_files:
            await asyncio.to_thread(hand_over, paths.source, paths.uid)  # the job's own files
        env = job_environment(
            config, run=self.spec.run, attempt=self.spec.attempt, paths=paths,
            path=self._options.job_path,
        )  # fmt: skip
        return build_command(
            config,
            root,
            env=env,
            paths=paths,
            python=self._options.python,
            sql_targets=self._options.sql_targets,
        )

    async def _store_results(
        self, store: ArtifactStore, outcome: Outcome, collector: OutputCollector
    ) -> Outcome:
        """Stores the output directory's files; a lost lease or shutdown cancels it."""
        upload = await unless(
            self._stops.abandon,
            store_results(
                store,
                self.paths.output,
                run=self.spec.run,
                attempt=self.spec.attempt,
                limits=self._options.result_limits,
                note=lambda message: collector.system(message, Level.WARNING),
            ),
        )
        if upload.cancelled():
            reason = self._stops.abandoned or StopReason.LEASE_LOST
            collector.system(f"results not stored: {stop_message(reason)}", Level.WARNING)
            return outcomes.stopped(reason, timeout=self.timeout, progress=outcome.progress)
        try:
            stored = upload.result()
        except UploadError as exc:
            collector.system(f"results not stored: {exc}", Level.ERROR)
            return outcomes.result_upload_failed(outcome, str(exc))
        skipped = f", {stored.skipped} skipped" if stored.skipped else ""
        collector.system(
            f"stored {len(stored.files)} result file(s), {stored.bytes} bytes{skipped}"
        )
        return outcomes.with_results(outcome, stored.files)

    def _not_starting(self, reason: StopReason, collector: OutputCollector) -> Outcome:
        collector.system(f"not starting the job: {stop_message(reason)}", Level.WARNING)
        return outcomes.stopped(reason, timeout=self.timeout, progress=None)

    def _mask_target(self, command: Command, collector: OutputCollector) -> Command:
        """A SQL job's DSN (a configured connection's too) joins the secrets masked."""
        dsn = command.env.get(DSN_VARIABLE)
        if dsn:
            masker = collector.masker
            extra = [dsn, *dsn_passwords(dsn)]
            collector.masker = Masker.of(extra) if masker is None else masker.with_secrets(extra)
            use_in_process_log(collector.masker)
        return command

    def _limited(self, command: Command, collector: OutputCollector) -> Command:
        """The command under the attempt's resource limits (unchanged without any)."""
        caps = self._options.limits
        self._limits, notes = attempt_limits(
            self.spec.config.resources, caps, job_uid=self.paths.uid
        )
        for note in notes:
            collector.system(note, Level.WARNING)
        if not self._limits:
            return command
        collector.system(f"resource limits: {self._limits.describe()}")
        return limited_command(command, self._limits, caps)
