"""The Batchyard SDK: define jobs from files, run one with arguments and a payload, wait
for it, download its results; then a run that fails, and one that is cancelled.

With `batchyard dev --workspace-root client/examples` serving, from a clone:

    uv run python client/examples/sdk_quickstart.py [OUT_DIR]
"""

import sys
from pathlib import Path

from batchyard.client import Client, DefinitionExistsError, RunFailedError

HERE = Path(__file__).parent


def define(client: Client, name: str) -> None:
    """Create the definition from HERE/<name>.yaml, or update it to what the file says."""
    try:
        client.definitions.create(HERE / f"{name}.yaml")
    except DefinitionExistsError:
        client.definitions.update(name, HERE / f"{name}.yaml")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("forecast")
    with Client() as client:  # $BATCHYARD_SERVER and $BATCHYARD_TOKEN, or the defaults
        define(client, "report")
        define(client, "slow")

        # Run a job: arguments, a JSON payload; wait() prints its progress as it changes.
        run = client.runs.submit("report", args=["4"], payload={"city": "Oslo"})
        run.wait()
        for path in run.results().download_files(out):
            print(f"downloaded {path} ({path.stat().st_size} bytes)")

        # A run that fails raises RunFailedError, after printing the tail of its log.
        try:
            client.runs.submit("report", payload={"city": "Atlantis"}, retries=0).wait()
        except RunFailedError as failed:
            print(f"failed as expected: {failed.run.attempts[-1].exit_code=}")

        # Follow a run's log live, and cancel it half way.
        slow = client.runs.submit("slow", args=["30"])
        for entry in slow.follow():
            print(entry.message)
            if entry.message == "tick 2 of 30":
                slow.cancel("seen enough")
        print(f"run {slow.id} is {client.run(slow.id).status()}")  # a new handle, by id


if __name__ == "__main__":
    main()
