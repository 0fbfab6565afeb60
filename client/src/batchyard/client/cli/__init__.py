"""The `batchyard` command line."""
