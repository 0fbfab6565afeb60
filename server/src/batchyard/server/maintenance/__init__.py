"""Background upkeep that runs inside every server replica (safe to run in several)."""
