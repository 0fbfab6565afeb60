"""gRPC servicers: protobuf in, domain calls, protobuf out. No SQL here."""
