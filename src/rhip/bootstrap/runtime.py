"""Process-level tuning shared by every rhip server process (HTTP workers, the writer, the CLI)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Keep the garbage collector off the platform's long-lived tables.

    The structure table, search parameters and compiled expressions are hundreds of thousands of objects
    that live as long as the process; freezing them spares every collection from walking them, and a
    higher first-generation threshold suits request handling, whose garbage is acyclic and freed at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
