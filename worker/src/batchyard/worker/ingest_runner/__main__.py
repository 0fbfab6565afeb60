"""``python -m batchyard.worker.ingest_runner``."""

import sys

from batchyard.worker.sql_runner.secrecy import hide_process_memory

hide_process_memory()  # before anything else: the DSN is in this process's environment block

from batchyard.worker.ingest_runner.main import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
