"""The worker package's `batchyard` command, declared cheaply for the entry-point group
`batchyard.commands`: `(one-line help, "module:register")`. The `batchyard` command lists
it from this module alone and imports the named module only when the command runs."""

WORKER = ("lease and execute runs", "batchyard.worker.cli:register")
