"""A job's output as log records: chunks split into capped lines, progress, secrets masked,
the in-memory tail quoted in failure messages. Knows nothing of where records go."""
