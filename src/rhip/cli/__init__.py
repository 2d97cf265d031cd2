"""rhip.cli."""
