"""The ingest runner: the subprocess of an INGEST job, ``python -m batchyard.worker.ingest_runner``.

The worker starts it like any job (own session, output shipped as the run's log, timeout,
cancel and kill handled by the execution) with the target's DSN in ``BATCHYARD_SQL_DSN``
(removed from the environment at once) and the job's ``IngestConfig`` in
``BATCHYARD_INGEST_CONFIG``. It lists the S3 objects through the worker's S3 code (the
:class:`~batchyard.worker.sources.port.ObjectStore` port), streams each file through a
decoder (:mod:`.decode`, :mod:`.mapping`) into ``COPY`` (:mod:`.load`), one transaction per
file with its ledger row (:mod:`.ledger`), and reports task counts (:mod:`.tasks`).

The worker process never imports this package (an import contract); the runner imports
asyncpg, aiobotocore (through the sources), zstandard and batchyard.v1's messages, never
gRPC or the worker's execution, leasing or shipping.
"""
