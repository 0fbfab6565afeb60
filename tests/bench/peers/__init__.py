"""Side-by-side benchmark of Batchyard against its peers (pgqueuer, procrastinate,
graphile-worker) and the floors (raw asyncpg, asyncio spawn), on one embedded PostgreSQL.

    uv run python -m tests.bench.peers [--quick] [--rounds 3] [--json FILE]

The peers live in throwaway environments under .batchyard/peers (envs.py), never in the
project's dependencies; each is driven by a small script its own interpreter runs
(drivers/), so project code never imports a peer library. Run on demand only.
"""
