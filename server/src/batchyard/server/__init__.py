"""Batchyard."""

import os

# Jobs and PostgreSQL are started with fork+exec, never a child that uses grpc: without
# fork support grpc's C core skips its fork handlers and the "fork_posix.cc … skipping
# fork() handlers" line on the terminal. Read when grpc loads, so set before.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
