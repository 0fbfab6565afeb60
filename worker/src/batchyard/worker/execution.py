"""The execution of one attempt, with no server involved.

:class:`Execution` prepares the attempt directory, makes the source ready, runs the program
(:mod:`~batchyard.worker.process`), turns its output into log records and progress
(:mod:`~batchyard.worker.output`), enforces the timeout, obeys stop requests, kills the
whole process group at the end, and returns an :class:`~batchyard.worker.outcome.Outcome`::

    async with Execution(spec, options, reaper=reaper) as execution:
        outcome = await execution.run()       # execution.progress while it runs
        ...                                   # execution.paths.output: the job's results
    # the attempt directory is gone here

The attempt's log (records numbered by :class:`~batchyard.worker.output.OutputCollector`)
goes to an in-memory tail — a failed attempt's message quotes its last stderr lines — and to
the ``sink`` given (the log shipper of a leased attempt). The worker's own system entries
say: which worker started the attempt, that the source is ready (or why it is not), the
command started, a timeout reached, a cancel or lease loss received, the signals sent, the
output dropped over the caps, the results stored or skipped, and how the attempt ended.

Results: once the job's process group is dead, the files it left in ``paths.output`` go to
the artifact store (:mod:`~batchyard.worker.results`), unless the worker lost the lease or
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
import shlex
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Self

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker import outcome as outcomes
from batchyard.worker.artifact_store import ArtifactStore, UploadError
from batchyard.worker.attempt_dir import (
    AttemptPaths,
    attempt_paths,
    create_attempt_dir,
    remove_attempt_dir,
)
from batchyard.worker.command import Command, build_command, job_environment
from batchyard.worker.git_source import (
    DEFAULT_GIT_TIMEOUT,
    DEFAULT_PROTOCOLS,
    GitOptions,
    fetch_git,
)
from batchyard.worker.job_users import hand_over
from batchyard.worker.limits import (
    ResourceLimits,
    WorkerLimits,
    attempt_limits,
    cpu_limit_reached,
    limited_command,
)
from batchyard.worker.lines import DEFAULT_MAX_LINE_BYTES
from batchyard.worker.log_tail import TailSink
from batchyard.worker.masking import Masker, dsn_passwords, use_in_process_log
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.output import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_OUTPUT_LINES,
    FanOutSink,
    Level,
    LogSink,
    OutputCollector,
)
from batchyard.worker.process import JobProcess
from batchyard.worker.reaper_client import Reaper
from batchyard.worker.results import ResultLimits, has_output, store_results
from batchyard.worker.s3_source import S3Fetched, S3Limits, fetch_s3
from batchyard.worker.slot_dirs import SlotDirectories
from batchyard.worker.sources import (
    SourceError,
    check_supported,
    prepare_source,
    source_kind,
    source_location,
)
from batchyard.worker.sql_targets import DSN_VARIABLE, describe_target

DEFAULT_TIMEOUT = 60 * 60.0
_WRITTEN_SOURCES = ("inline", "git", "s3")
"""Sources the worker writes into the attempt directory (a workspace is used in place)."""


@dataclass(frozen=True)
class AttemptSpec:
    """What the server leased: one attempt of one run."""

    run: str
    attempt: int
    config: job_pb2.JobConfig
    payload: bytes = b""


@dataclass(frozen=True)
class ExecutionOptions:
    """The worker's settings that shape every execution."""

    state_dir: Path
    workspace_root: Path
    """Resolved; WORKSPACE sources must stay below it."""
    python: str
    """Absolute path of the interpreter for PYTHON jobs."""
    job_path: str
    """The PATH jobs get (and SHELL commands are looked up on)."""
    kill_grace: float = 10.0
    default_timeout: float = DEFAULT_TIMEOUT
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    """Per attempt, unless the job's ``resources.output_bytes`` says otherwise."""
    max_output_lines: int = DEFAULT_MAX_OUTPUT_LINES
    worker_id: str = ""
    """Named in the attempt's first system entry."""
    drain_timeout: float = 5.0
    """How long to wait for the output pipes to close once the group is dead."""
    directories: SlotDirectories | None = None
    """The worker's reused attempt directories; None: a fresh directory per attempt. Only
    these give each slot a user of its own (``--job-users``), which then runs its jobs."""
    git_protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    """The transports GIT sources may use."""
    git_timeout: float = DEFAULT_GIT_TIMEOUT
    """Seconds a GIT source's fetch may take (at most the attempt's timeout)."""
    s3_limits: S3Limits = field(default_factory=S3Limits)
    """Bounds and timeouts of S3 source downloads."""
    artifacts: ArtifactStore | None = None
    """Where result files go; None: they are not collected."""
    result_limits: ResultLimits = field(default_factory=ResultLimits)
    """Per-attempt caps on the result files stored."""
    sql_targets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Connection name (lower case) → DSN, for SQL jobs' ``sql_target.connection``."""
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    """The worker's resource limits (defaults and caps of the jobs' ``resources``)."""


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
        self.paths: AttemptPaths = attempt_paths(
            options.state_dir, spec.run, spec.attempt, has_payload=bool(spec.payload)
        )
        self._options = options
        self._reaper = reaper
        self._sink = sink
        self._collector: OutputCollector | None = None
        self._stop: StopReason | None = None
        self._stop_requested = asyncio.Event()
        self._kill_now = asyncio.Event()
        self._abandoned: StopReason | None = None
        """LEASE_LOST or SHUTDOWN, once either arrived: the attempt will not be completed."""
        self._abandon = asyncio.Event()
        self._started = False
        self._group_released = False
        self._holds_dir = False
        self._s3_fetched: S3Fetched | None = None
        self._source_ready = ""
        """The system entry saying a GIT source is ready (its commit)."""
        self._masker = Masker.for_job(spec.config)
        """The job's secrets, masked in its log and in the worker's process log."""
        self._limits = ResourceLimits()

    async def __aenter__(self) -> Self:
        use_in_process_log(self._masker)  # this task and those it starts work for the job
        directories = self._options.directories
        if directories is not None:
            self.paths = await directories.acquire(self.spec.payload)
            self._holds_dir = True
            if self._reaper is not None:
                self._reaper.track_dir(self.paths.root)
            return self
        if self._reaper is not None:
            self._reaper.track_dir(self.paths.root)
        try:  # off the event loop: file-system metadata can be slow
            await asyncio.to_thread(create_attempt_dir, self.paths, self.spec.payload)
        except BaseException:
            await self.remove()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.remove()

    @property
    def progress(self) -> int | None:
        """The latest progress the job reported (0-100), if any."""
        return None if self._collector is None else self._collector.progress

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
        if self._stop is None:
            self._stop = reason
            self._stop_requested.set()
        if reason is StopReason.LEASE_LOST:
            self._kill_now.set()
        if reason in (StopReason.LEASE_LOST, StopReason.SHUTDOWN) and self._abandoned is None:
            self._abandoned = reason
            self._abandon.set()

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
            collector.system(self._started_message())
            outcome = await self._execute(collector)
            collector.finish()  # the last partial lines, the note on dropped output
            store = self._options.artifacts
            # An empty output directory (a trivial run) costs this one directory read.
            if store is not None and outcome.reportable and has_output(self.paths.output):
                outcome = await self._store_results(store, outcome, collector)
            collector.system(f"attempt ended: {outcome.message}", _ending_level(outcome))
            return _masked(_with_stderr(outcome, tail), collector.masker)
        finally:
            collector.close()

    async def remove(self) -> None:
        """Removes the attempt directory, or empties it for reuse (idempotent)."""
        directories = self._options.directories
        if directories is not None:
            if self._holds_dir:
                self._holds_dir = False
                await directories.release(self.paths)
        else:
            await remove_attempt_dir(self.paths)
        if self._reaper is not None:
            self._reaper.release_dir(self.paths.root)

    def _max_output_bytes(self) -> int:
        configured = self.spec.config.resources.output_bytes
        return configured if configured > 0 else self._options.max_output_bytes

    async def _prepare(self) -> Command:
        config = self.spec.config
        if source_kind(config) == "git":
            check_supported(config)
            git = GitOptions(
                state_dir=self._options.state_dir,
                protocols=self._options.git_protocols,
                timeout=min(self._options.git_timeout, self.timeout),
            )
            # blocking (git runs for seconds): in a thread, keeping the event loop free
            checkout = await asyncio.to_thread(fetch_git, config.source.git, self.paths.source, git)
            self._source_ready = checkout.describe(config.source.git)
            source_root: Path | None = checkout.root
        else:
            source_root = prepare_source(config, self.paths, self._options.workspace_root)
        uid = self.paths.uid
        if uid is not None and source_kind(config) in _WRITTEN_SOURCES:
            await asyncio.to_thread(hand_over, self.paths.source, uid)  # the job's own files
        env = job_environment(
            config,
            run=self.spec.run,
            attempt=self.spec.attempt,
            paths=self.paths,
            path=self._options.job_path,
        )
        return build_command(
            config,
            source_root,
            env=env,
            paths=self.paths,
            python=self._options.python,
            sql_targets=self._options.sql_targets,
        )

    async def _fetch_s3(self, collector: OutputCollector) -> None:
        """Downloads an S3 source into ``paths.source`` (before ``_prepare``); a stop request
        cancels the download."""
        config = self.spec.config
        if source_kind(config) != "s3":
            return
        check_supported(config)  # refusals come before any download
        fetch = asyncio.ensure_future(
            fetch_s3(
                config.source.s3,
                self.paths.source,
                note=lambda message: collector.system(message, Level.WARNING),
                limits=self._options.s3_limits,
            )
        )
        stop_requested = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait((fetch, stop_requested), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_requested.cancel()
            if not fetch.done():
                fetch.cancel()
                await asyncio.wait((fetch,))  # no writes into a directory being removed
        if not fetch.cancelled():
            self._s3_fetched = fetch.result()

    async def _execute(self, collector: OutputCollector) -> Outcome:
        try:
            await self._fetch_s3(collector)
            if (stop := self._stop) is not None:  # stopped before or during the download
                return self._not_starting(stop, collector)
            command = self._mask_target(await self._prepare(), collector)
        except SourceError as exc:
            collector.system(f"source unavailable: {exc}", Level.ERROR)
            return outcomes.source_unavailable(str(exc))
        source = self._describe_source()
        if source:
            collector.system(source)
        if self._stop is not None:  # stopped while a git source was fetched
            return self._not_starting(self._stop, collector)
        command = self._limited(command, collector)
        collector.system(f"starting: {self._describe()}")
        try:
            process = await JobProcess.start(command, collector.feed, collector.end)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            message = f"cannot start {self._program()!r}: {reason}"
            collector.system(message, Level.ERROR)
            return outcomes.source_unavailable(message)
        return await self._supervise(process, collector)

    async def _store_results(
        self, store: ArtifactStore, outcome: Outcome, collector: OutputCollector
    ) -> Outcome:
        """Stores the output directory's files; a lost lease or shutdown cancels it."""
        upload = asyncio.ensure_future(
            store_results(
                store,
                self.paths.output,
                run=self.spec.run,
                attempt=self.spec.attempt,
                limits=self._options.result_limits,
                note=lambda message: collector.system(message, Level.WARNING),
            )
        )
        abandon = asyncio.ensure_future(self._abandon.wait())
        try:
            await asyncio.wait((upload, abandon), return_when=asyncio.FIRST_COMPLETED)
        finally:
            abandon.cancel()
            if not upload.done():
                upload.cancel()
                await asyncio.wait((upload,))  # no reads from a directory being emptied
        if upload.cancelled():
            reason = self._abandoned or StopReason.LEASE_LOST
            collector.system(f"results not stored: {_stop_message(reason)}", Level.WARNING)
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
        collector.system(f"not starting the job: {_stop_message(reason)}", Level.WARNING)
        return outcomes.stopped(reason, timeout=self.timeout, progress=None)

    async def _supervise(self, process: JobProcess, collector: OutputCollector) -> Outcome:
        pgid = process.pgid
        if self._reaper is not None:
            self._reaper.track_group(pgid)
        try:
            stopped = await self._wait(process, collector)
            process.signal_group(signal.SIGKILL)  # grandchildren die with the attempt
            cpu = process.cpu_seconds() if self._limits.cpu_seconds is not None else 0.0
            returncode = process.reap()
            self._release_group(pgid)
            if not await process.drain(within=self._options.drain_timeout):
                collector.system(
                    "output pipes were still open after the job's process group was killed "
                    "(a process left the job's session?); closed them",
                    Level.WARNING,
                )
        finally:
            process.close()
            self._release_group(pgid)
        if stopped is None:
            outcome = outcomes.exited(returncode, collector.progress)
            if cpu_limit_reached(returncode, self._limits, cpu):
                message = f"CPU time limit of {self._limits.cpu_seconds}s reached"
                collector.system(message, Level.ERROR)
                outcome = replace(outcome, message=f"{outcome.message}: {message}")
            return outcome
        return outcomes.stopped(stopped, timeout=self.timeout, progress=collector.progress)

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

    async def _wait(self, process: JobProcess, collector: OutputCollector) -> StopReason | None:
        """Waits for the leader's exit, a stop request or the timeout: None if it exited."""
        stop_requested = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait(
                (process.exited, stop_requested),
                timeout=self.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop_requested.cancel()
        if process.exited.done():
            return None
        reason = self._stop if self._stop is not None else StopReason.TIMEOUT
        if reason is StopReason.TIMEOUT:
            collector.system(
                f"timeout of {outcomes.format_seconds(self.timeout)} reached", Level.ERROR
            )
        else:
            collector.system(f"stopping the job: {_stop_message(reason)}", Level.WARNING)
        await self._terminate(process, reason, collector)
        return reason

    async def _terminate(
        self, process: JobProcess, reason: StopReason, collector: OutputCollector
    ) -> None:
        """SIGTERM, up to ``kill_grace`` for the leader to exit, then SIGKILL."""
        if reason is not StopReason.LEASE_LOST and not self._kill_now.is_set():
            grace = self._options.kill_grace
            if process.signal_group(signal.SIGTERM):
                collector.system(
                    f"sent SIGTERM to the job's process group; SIGKILL follows in "
                    f"{outcomes.format_seconds(grace)}"
                )
            kill_now = asyncio.ensure_future(self._kill_now.wait())
            try:
                await asyncio.wait(
                    (process.exited, kill_now), timeout=grace, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                kill_now.cancel()
        if not process.exited.done():
            process.signal_group(signal.SIGKILL)
            collector.system("sent SIGKILL to the job's process group", Level.WARNING)
            await asyncio.shield(process.exited)

    def _release_group(self, pgid: int) -> None:
        if self._reaper is not None and not self._group_released:
            self._group_released = True
            self._reaper.release_group(pgid)

    def _program(self) -> str:
        """The file or command the job runs, as the user named it."""
        config = self.spec.config
        return source_location(config) if config.HasField("source") else config.source_location

    def _started_message(self) -> str:
        worker = self._options.worker_id
        where = f" on worker {worker}" if worker else ""
        return f"attempt {self.spec.attempt} of run {self.spec.run} started{where}"

    def _describe_source(self) -> str:
        """The system entry saying the source is ready ("" when the job has none)."""
        config = self.spec.config
        match source_kind(config):
            case "workspace":
                return f"source ready: workspace path {config.source.workspace.path or '.'!r}"
            case "inline":
                return f"source ready: inline text written to {source_location(config)!r}"
            case "git":
                return self._source_ready
            case "s3" if self._s3_fetched is not None:
                fetched = self._s3_fetched
                skipped = f", {fetched.skipped} skipped" if fetched.skipped else ""
                return (
                    f"source ready: {fetched.files} file(s), {fetched.bytes} bytes from "
                    f"{config.source.s3.uri}{skipped}"
                )
            case _:
                return ""

    def _describe(self) -> str:
        config = self.spec.config
        kind = job_pb2.JobType.Name(config.type).removeprefix("JOB_TYPE_").lower()
        program = shlex.join([self._program(), *config.args])
        if config.type == job_pb2.JOB_TYPE_SQL:
            return f"{kind} job: {program} against {describe_target(config.sql_target)}"
        return f"{kind} job: {program}"


_STOP_MESSAGES = {
    StopReason.CANCEL: "cancel requested by a user",
    StopReason.LEASE_LOST: "the worker lost the run's lease",
    StopReason.SHUTDOWN: "the worker is shutting down (the run is handed back)",
    StopReason.TIMEOUT: "timeout reached",
}


def _stop_message(reason: StopReason) -> str:
    return _STOP_MESSAGES[reason]


def _with_stderr(outcome: Outcome, tail: TailSink) -> Outcome:
    """A failed attempt's message quotes the job's last stderr lines."""
    if outcome.status != run_pb2.RUN_STATUS_FAILED:
        return outcome
    if outcome.reason == run_pb2.RUN_REASON_RESULT_UPLOAD_FAILED:
        return outcome  # the job did not fail: its stderr says nothing about why
    quoted = tail.stderr_summary()
    return replace(outcome, message=f"{outcome.message}: {quoted}") if quoted else outcome


def _masked(outcome: Outcome, masker: Masker | None) -> Outcome:
    """The outcome's message without the job's secrets (a source error may quote them)."""
    return outcome if masker is None else replace(outcome, message=masker.mask(outcome.message))


def _ending_level(outcome: Outcome) -> Level:
    if outcome.status == run_pb2.RUN_STATUS_SUCCEEDED:
        return Level.INFO
    return Level.ERROR if outcome.status == run_pb2.RUN_STATUS_FAILED else Level.WARNING
