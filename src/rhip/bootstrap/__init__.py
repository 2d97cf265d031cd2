"""L6 composition root: the settings tree and the wiring of engines, repositories and services."""
