"""An ad-hoc SQL query through the SDK: submitted without a definition, waited for, its
result set read from the result `result.csv`.

Needs a worker that knows the database `sandbox` (batchyard worker --sql-target
sandbox=postgresql://..., or BATCHYARD_SQL_TARGET_SANDBOX=postgresql://...):

    uv run python client/examples/sdk_sql.py
"""

import csv
import io
import tempfile
from pathlib import Path

from batchyard.client import Client

QUERY = (Path(__file__).parent / "jobs" / "count.sql").read_text()


def main() -> None:
    with Client() as client, tempfile.TemporaryDirectory() as tmp:
        run = client.sql(QUERY, target="sandbox").wait(show_progress=False)
        path = run.results().download_file(tmp, name="result.csv")
        for row in csv.DictReader(io.StringIO(path.read_text())):
            print(f"{row['city']}: {row['rain_mm']} mm over {row['days']} days")


if __name__ == "__main__":
    main()
