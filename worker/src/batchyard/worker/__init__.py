"""Batchyard worker: leases runs over gRPC and executes each attempt as a subprocess.

* :mod:`~batchyard.worker.execution.attempt` — one attempt, no server needed: directory, source,
  process group, output, timeout, stop, outcome.
* :mod:`~batchyard.worker.leasing.runner` — leasing for free slots, heartbeats, completion,
  graceful shutdown; :mod:`~batchyard.worker.app` wires it up.
* :mod:`~batchyard.worker.reaper.sidecar` — the sidecar that kills a dead worker's jobs.
"""
