"""``python -m batchyard.worker --server HOST:PORT ...``"""

from batchyard.worker.cli import main

raise SystemExit(main())
