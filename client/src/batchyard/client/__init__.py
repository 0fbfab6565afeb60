"""Batchyard."""
