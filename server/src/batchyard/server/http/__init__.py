"""The HTTP face: the Connect protocol over the same servicers, the console, /metrics."""
