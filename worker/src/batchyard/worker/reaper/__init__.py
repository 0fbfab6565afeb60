"""The reaper sidecar (:mod:`~batchyard.worker.reaper.sidecar`), which kills a dead
worker's jobs, and the worker's handle on it (:mod:`~batchyard.worker.reaper.client`)."""
