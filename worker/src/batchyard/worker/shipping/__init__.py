"""Shipping an attempt's log to the server: the wire encoding, the spool (memory, then a
spill file) and the shipper's AppendLogs cycles."""
