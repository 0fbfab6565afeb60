"""The server package's `batchyard` commands, declared cheaply for the entry-point group
`batchyard.commands`: `(one-line help, "module:register")`. The `batchyard` command lists
them from this module alone and imports the named module only when the command runs."""

SERVER = ("run the Batchyard API server", "batchyard.server.cli:register")
DEV = ("run PostgreSQL, the server and a worker on this machine", "batchyard.server.dev:register")
