"""The portal's words in Chinese (default) and English: one JSON file per area under ``messages/``.

Each file maps a key to ``{"zh": "…", "en": "…"}``. Areas own their files (``common.json``,
``clinician.json`` …), so pages can grow without touching each other's words. A key missing in English
falls back to Chinese, and a key missing altogether shows as itself, so a gap is visible, not fatal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "rhip_lang"


class Messages:
    """Every area's words, by language."""

    def __init__(self, table: Mapping[str, Mapping[str, str]]) -> None:
        self.table = dict(table)

    @classmethod
    def load(cls) -> Messages:
        """The words of every ``messages/*.json`` file in the package (a key defined twice is an error)."""
        table: dict[str, dict[str, str]] = {}
        folder = resources.files("rhip.web.portal").joinpath("messages")
        for item in sorted(folder.iterdir(), key=lambda i: i.name):
            if not item.name.endswith(".json"):
                continue
            for key, words in json.loads(item.read_text(encoding="utf-8")).items():
                if key in table:
                    raise ValueError(f"portal message {key!r} is defined twice ({item.name})")
                table[key] = dict(words)
        return cls(table)

    def text(self, key: str, lang: str, **values: object) -> str:
        """The words of ``key`` in ``lang``, with ``{name}`` placeholders filled from ``values``."""
        words = self.table.get(key)
        if words is None:
            return key
        found = words.get("en" if lang == "en" else "zh") or words.get("zh") or key
        return found.format(**values) if values else found


def language(cookie: str | None) -> str:
    """The page language: the switch's cookie, else zh-CN (the portal is Chinese first, whatever the browser)."""
    if cookie in LANGUAGES:
        return str(cookie)
    return DEFAULT_LANGUAGE
