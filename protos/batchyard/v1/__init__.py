"""Generated gRPC API: package batchyard.v1."""
