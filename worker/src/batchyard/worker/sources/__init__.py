"""A job's source behind one port (:mod:`~batchyard.worker.sources.port`): workspace,
inline, Git and S3 adapters, picked for a job by :mod:`~batchyard.worker.sources.catalog`.
Sources know nothing of execution or log shipping."""
