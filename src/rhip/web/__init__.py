"""rhip.web."""
