"""`python -m batchyard.server [migrate] [flags]`: the same as `batchyard server`."""

from batchyard.server.cli import main

raise SystemExit(main())
