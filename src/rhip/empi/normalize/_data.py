"""Reading this package's data files (code tables under ``data/``)."""

from __future__ import annotations

from importlib import resources


def read_data(name: str) -> str:
    """The text of ``data/<name>`` inside this package."""
    return resources.files("rhip.empi.normalize").joinpath("data", name).read_text(encoding="utf-8")
