"""One attempt, no server needed: its directory, command, process group, limits, job user
and outcome (:mod:`~batchyard.worker.execution.attempt`). Sources come through their port
(:mod:`batchyard.worker.sources.port`), output goes to a sink, results to the store."""
