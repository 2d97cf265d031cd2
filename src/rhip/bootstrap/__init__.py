"""rhip.bootstrap."""
