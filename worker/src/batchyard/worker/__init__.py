"""Batchyard worker: leases runs over gRPC and executes each attempt as a subprocess.

The wings, each a sub-package (import contracts in the root ``pyproject.toml`` keep them
apart):

* :mod:`~batchyard.worker.execution` — one attempt, no server needed: the attempt
  directory (one provider, :mod:`~batchyard.worker.execution.directories`), the command,
  limits and job user, the process group, stop requests, supervision, the outcome.
* :mod:`~batchyard.worker.sources` — the source port (:mod:`~batchyard.worker.sources.port`)
  and its adapters: workspace, inline, Git, S3; the catalog picks one for a job.
* :mod:`~batchyard.worker.output` — a job's output as capped, masked log records.
* :mod:`~batchyard.worker.shipping` — those records to the server (spool, AppendLogs).
* :mod:`~batchyard.worker.results` — result files into the artifact store.
* :mod:`~batchyard.worker.leasing` — the runner (free slots, graceful shutdown), one leased
  attempt from lease to report, its heartbeat.
* :mod:`~batchyard.worker.reaper` — the sidecar that kills a dead worker's jobs.
* :mod:`~batchyard.worker.sql_runner` — the SQL jobs' program (a subprocess, never imported).

At the root: :mod:`~batchyard.worker.settings` (the flags of every wing, composed),
:mod:`~batchyard.worker.app` (the composition root), :mod:`~batchyard.worker.cli`,
:mod:`~batchyard.worker.server_api` (the WorkerService client), the outcome vocabulary,
the process log, and removing directory trees.
"""
