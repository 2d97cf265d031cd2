"""The portal's navigation: the pages each role's menu leads to, and where each role lands.

The menu only shows the way; every page checks the viewer's role again on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.security.principal import Role

PREFIX = "/portal"


@dataclass(frozen=True)
class NavItem:
    """One link of the navigation bar."""

    href: str
    key: str  # message key of its label


NAVIGATION: dict[Role, tuple[NavItem, ...]] = {
    Role.CLINICIAN: (NavItem("/clinician", "nav.workbench"),),
    Role.PUBLIC_HEALTH: (NavItem("/clinician", "nav.workbench"),),
    Role.RESIDENT: (
        NavItem("/me", "nav.my_record"),
        NavItem("/me/viewers", "nav.who_viewed"),
        NavItem("/me/consent", "nav.consent"),
    ),
    Role.ADMIN: (
        NavItem("/admin/health", "nav.health"),
        NavItem("/admin/quality", "nav.quality"),
        NavItem("/admin/institutions", "nav.institutions"),
        NavItem("/admin/dictionaries", "nav.dictionaries"),
        NavItem("/admin/accounts", "nav.accounts"),
        NavItem("/admin/review", "nav.review"),
        NavItem("/admin/exchange", "nav.exchange"),
        NavItem("/admin/audit", "nav.audit"),
    ),
    Role.STATISTICIAN: (NavItem("/admin/health", "nav.health"),),
}
NAVIGATION[Role.PLATFORM] = NAVIGATION[Role.CLINICIAN] + NAVIGATION[Role.ADMIN]


def links(role: Role | None) -> tuple[NavItem, ...]:
    """The links a role's menu shows (none for a visitor)."""
    return NAVIGATION.get(role, ()) if role is not None else ()


def home(role: Role) -> str:
    """The page a role lands on after signing in."""
    items = links(role)
    return PREFIX + (items[0].href if items else "/")
