"""Identity events in the audit trail: sign-ins, refreshes, sign-outs, refused bearer tokens, administration.

The identity service records through an :class:`AuditHook` (``rhip.security.audit.trail.AuditTrail`` in a
platform; none in unit tests). Every entry names its subject (``user:<name>``, ``client:<id>``, or
``anonymous`` when the account is unknown: what someone typed as a username may be a password), the caller's
address, the outcome (0 success, 4 refused) and a reason; never a password, a token or a one-time code.

Subtypes: ``login`` (password, client-credentials and refresh grants), ``logout`` (revocation),
``authenticate`` (a refused bearer token), ``security-admin`` (operators' changes to accounts and keys,
operator-issued tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from rhip.security.audit_port import AccessRecorder
from rhip.security.context import maybe_principal
from rhip.security.identity.records import Client, User
from rhip.security.principal import Principal, Role, platform_principal

log = logging.getLogger("rhip.security.identity")
LOGIN, LOGOUT, AUTHENTICATE, ADMIN = "login", "logout", "authenticate", "security-admin"
SUCCESS, REFUSED = "0", "4"
ANONYMOUS = "anonymous"


# Where identity events go: AuditTrail.accessed's signature (rhip.security.audit_port).
AuditHook = AccessRecorder


def anonymous(address: str | None) -> Principal:
    """The subject of an attempt whose account is unknown."""
    return Principal(ANONYMOUS, Role.RESIDENT, frozenset(), address=address)


def user_principal(
    user: User,
    address: str | None,
    *,
    client_id: str | None = None,
    token_id: str | None = None,
    session: str | None = None,
) -> Principal:
    """A user as the subject of an identity event."""
    return Principal(
        user.subject,
        user.role,
        frozenset(),
        institution=user.institution,
        organization=user.organization,
        department=user.department,
        district=user.district,
        client_id=client_id,
        token_id=token_id,
        session=session,
        address=address,
    )


def client_principal(client: Client, address: str | None, *, token_id: str | None = None) -> Principal:
    """A registered client as the subject of an identity event."""
    return Principal(
        client.subject,
        client.role,
        frozenset(),
        institution=client.institution,
        organization=client.organization,
        client_id=client.client_id,
        token_id=token_id,
        address=address,
    )


def operator() -> Principal:
    """Who administers: the principal of the running work (``cli:<user>``), else the platform."""
    return maybe_principal() or platform_principal("identity-admin")


class IdentityAudit:
    """Records identity events through a hook (nothing without one).

    A failing hook fails the operation (the trail's own rule: no access goes unrecorded), except for refused
    bearer tokens, whose refusal stands either way.
    """

    def __init__(self, hook: AuditHook | None = None) -> None:
        self.hook = hook

    def record(
        self,
        principal: Principal,
        *,
        subtype: str,
        outcome: str,
        action: str = "E",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """One event (``detail``: short codes and reasons, never secrets)."""
        if self.hook is None:
            return
        clean = {k: v for k, v in (detail or {}).items() if v}
        self.hook.accessed(
            principal,
            action=action,
            subtype=subtype,
            resources=(),
            patients=(),
            outcome=outcome,
            detail=clean or None,
        )

    def refused(
        self, principal: Principal | None, address: str | None, subtype: str, reason: str, **detail: str
    ) -> None:
        """A refused attempt (``principal``: the account's, when the account exists)."""
        who = anonymous(address) if principal is None else replace(principal, address=address)
        self.record(who, subtype=subtype, outcome=REFUSED, detail={"reason": reason, **detail})

    def token_refused(self, principal: Principal | None, address: str | None, reason: str) -> None:
        """A bearer token that did not authenticate (forged, expired, revoked, of a disabled account)."""
        try:
            self.refused(principal, address, AUTHENTICATE, reason)
        except Exception as exc:  # the refusal stands; a broken trail is logged, not raised over it
            log.error("a refused bearer token could not be audited: %s", type(exc).__name__)

    def admin(
        self, change: str, target: str, *, outcome: str = SUCCESS, action: str = "U", **detail: str
    ) -> None:
        """An operator's change to an account, a client or the signing keys."""
        self.record(
            operator(),
            subtype=ADMIN,
            outcome=outcome,
            action=action,
            detail={"change": change, "target": target, **detail},
        )
