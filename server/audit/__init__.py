"""The tamper-evident audit log (hash chain) and the sink domain code writes through."""
