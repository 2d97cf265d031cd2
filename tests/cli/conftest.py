"""The CLI fixtures (defined beside the core CLI tests) shared by every CLI test module."""

from __future__ import annotations

from .test_cli import cli, migrated, template_db

__all__ = ["cli", "migrated", "template_db"]
