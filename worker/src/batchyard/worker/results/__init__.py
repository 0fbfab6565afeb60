"""Result files: collecting an attempt's output directory (:mod:`~batchyard.worker.results.store`)
into the artifact store, a local directory or S3 (:mod:`~batchyard.worker.results.artifacts`)."""
