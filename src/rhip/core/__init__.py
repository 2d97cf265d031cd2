"""L0 kernel: errors with stable codes, events, ids and clock. Standard library only."""
