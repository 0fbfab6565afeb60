"""The worker's side of the lease: the runner (leasing for free slots, graceful shutdown),
one leased attempt from lease to report, and its heartbeat."""
