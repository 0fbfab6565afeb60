"""The asyncio SDK: three runs at once, waited for together, their results listed; then
the latest runs of the definition.

With `batchyard dev --workspace-root client/examples` serving, after sdk_quickstart.py
(which defines `report`), from a clone:

    uv run python client/examples/sdk_async.py
"""

import asyncio

from batchyard.client import AsyncClient


async def main() -> None:
    async with AsyncClient() as client:
        cities = {"Oslo": 2, "Bergen": 3, "Tromsø": 4}
        runs = [
            await client.runs.submit("report", args=[str(days)], payload={"city": city})
            for city, days in cities.items()
        ]
        await asyncio.gather(*(run.wait(show_progress=False) for run in runs))
        for run in runs:
            results = await run.results()
            sizes = ", ".join(f"{r.name} {r.size_bytes} B" for r in results)
            print(f"{run.id} {await run.status()}: {sizes}")

        async for run in client.runs.list(definition="report", limit=3):
            print(run)


if __name__ == "__main__":
    asyncio.run(main())
