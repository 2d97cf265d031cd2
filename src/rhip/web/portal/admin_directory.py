"""Portal pages of the operators area (平台管理): institutions and practitioners, the institutions' local
dictionaries, users and client systems, audit search. Every page is the administrator's only; changes go through the platform's FHIR
service or its identity service acting as the administrator, so validation, security and audit apply."""

from __future__ import annotations

from starlette.routing import Route

from rhip.web.portal import (
    admin_dir_accounts,
    admin_dir_audit,
    admin_dir_dictionaries,
    admin_dir_institutions,
    admin_dir_practitioners,
)
from rhip.web.portal.core import Portal


def routes(portal: Portal) -> list[Route]:
    """The area's routes."""
    return [
        *admin_dir_institutions.routes(portal),
        *admin_dir_practitioners.routes(portal),
        *admin_dir_dictionaries.routes(portal),
        *admin_dir_accounts.routes(portal),
        *admin_dir_audit.routes(portal),
    ]
