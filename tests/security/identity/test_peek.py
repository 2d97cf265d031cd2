"""``peek``: the principal of a token verified before, from memory only (the rate limiter's key)."""

from __future__ import annotations

from typing import Any

import pytest

from rhip.core.errors import Unauthenticated
from rhip.security.identity.service import IdentityService

from .support import PASSWORD, Clock


def _boom(*_: Any, **__: Any) -> Any:
    raise AssertionError("peek must do no I/O and verify no signature")


def test_peek_sees_only_cached_verified_tokens(identity: IdentityService, clock: Clock) -> None:
    identity.accounts.add_user("dr-li", PASSWORD, "clinician")
    token = identity.token({"grant_type": "password", "username": "dr-li", "password": PASSWORD})[
        "access_token"
    ]
    assert identity.peek(token) is None  # never verified yet: its address is the rate key
    assert identity.authenticate(token).subject == "user:dr-li"
    # From now on no database, no signature check, no JWKS: the event loop may call it.
    identity.authenticator._verify = _boom
    identity.authenticator.revoked._load = _boom
    identity.authenticator.disabled._load = _boom
    identity.db = _boom  # type: ignore[assignment]
    known = identity.peek(token)
    assert known is not None and known.subject == "user:dr-li"
    assert identity.peek("forged." + token[7:]) is None
    assert identity.peek("anything at all") is None
    clock.advance(3600)
    assert identity.peek(token) is None  # expired


def test_peek_honours_the_revocations_last_loaded(identity: IdentityService) -> None:
    identity.accounts.add_user("dr-li", PASSWORD, "clinician")
    token = identity.token({"grant_type": "password", "username": "dr-li", "password": PASSWORD})[
        "access_token"
    ]
    identity.authenticate(token)
    identity.revoke({"token": token})
    with pytest.raises(Unauthenticated):
        identity.authenticate(token)  # loads the revocations
    assert identity.peek(token) is None
