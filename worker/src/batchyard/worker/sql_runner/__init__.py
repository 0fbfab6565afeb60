"""The SQL runner: the subprocess of a SQL job, ``python -m batchyard.worker.sql_runner FILE``.

The worker starts it like any job (own session, output shipped as the run's log, timeout,
cancel and kill handled by the execution) with the target's DSN in ``BATCHYARD_SQL_DSN``,
never on the command line; the runner removes it from its environment at once. It splits
the file into statements (:mod:`.split`), runs them one by one in autocommit — a file's own
``BEGIN``/``COMMIT`` work — with asyncpg, logs each statement and its outcome, stops at the
first error, and saves the last statement's rows as ``$BATCHYARD_OUTPUT_DIR/result.csv``.

The worker process never imports this package (an import contract): the worker has no
database driver of its own, only its SQL jobs do.
"""
