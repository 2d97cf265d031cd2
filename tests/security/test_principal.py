"""Principals key the policy's caches: equal principals hash alike, a changed one anew."""

from __future__ import annotations

from dataclasses import replace

from rhip.security.principal import Principal, Role
from rhip.security.scopes import parse_scopes


def test_the_hash_is_kept_and_follows_equality() -> None:
    p = Principal("user:a", Role.CLINICIAN, parse_scopes("user/*.rs"), institution="4501", extra={"k": "v"})
    moved = replace(p, address="10.0.0.1")
    back = replace(moved, address=None, extra={})
    assert hash(p) == hash(p) and p == back and hash(p) == hash(back)  # extra is not compared
    assert moved != p and hash(moved) != hash(p)
    assert {p: 1}[back] == 1
