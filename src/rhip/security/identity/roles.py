"""The most each platform role may do: a token's scopes are cut down to its role's maximum."""

from __future__ import annotations

from rhip.security.principal import Role
from rhip.security.scopes import Scope, parse_scopes

# A token never carries more than its role allows here, whatever the client asks for or may have.
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: parse_scopes("user/*.cruds system/*.cruds"),
    Role.SYSTEM: parse_scopes("system/*.cruds"),
    Role.CLINICIAN: parse_scopes("user/*.cruds"),
    Role.PUBLIC_HEALTH: parse_scopes("user/*.rs"),
    Role.STATISTICIAN: parse_scopes("user/*.s"),
    # Residents read their record and record their own consent (公众门户: consent settings).
    Role.RESIDENT: parse_scopes("patient/*.rs patient/Consent.cu"),
    Role.PLATFORM: parse_scopes("system/*.cruds"),
}

# Who may be what: people sign in with a password (or come from a trusted OpenID provider); institution
# systems and platform tools authenticate as clients. The platform role is never issued a token.
USER_ROLES = frozenset({Role.ADMIN, Role.CLINICIAN, Role.PUBLIC_HEALTH, Role.STATISTICIAN, Role.RESIDENT})
CLIENT_ROLES = frozenset({Role.SYSTEM, Role.ADMIN})


def user_role(text: str) -> Role:
    """The role of a user account; raises ValueError for a role people cannot have."""
    role = Role(text)
    if role not in USER_ROLES:
        raise ValueError(f"a user cannot have role {text!r}: one of {', '.join(sorted(USER_ROLES))}")
    return role


def client_role(text: str) -> Role:
    """The role of a registered client; raises ValueError for a role clients cannot have."""
    role = Role(text)
    if role not in CLIENT_ROLES:
        raise ValueError(f"a client cannot have role {text!r}: one of {', '.join(sorted(CLIENT_ROLES))}")
    return role
