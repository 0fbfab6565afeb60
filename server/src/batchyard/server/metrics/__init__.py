"""Prometheus metrics of the server (served at /metrics on the HTTP port)."""
