"""用户与接入系统: user accounts (list, create with a role and its binding, disable, enable) and client
systems (list, register with a JWKS URL or public keys, disable, enable).

Changes go through the identity service's ``accounts`` as ``rhip users`` and ``rhip clients`` do, run
acting as the administrator: the service audits each (``security-admin``) naming the administrator.
A new user's password is the administrator's (checked by the password policy) or generated and shown
once, on the answer to the form, never in a URL or a log.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.core.errors import InvalidRequest, RhipError
from rhip.registries.fhir_port import matches
from rhip.security.identity.auditing import REFUSED
from rhip.security.principal import Role
from rhip.web.portal.admin_dir_common import admin, admin_form, local_us
from rhip.web.portal.admin_dir_keys import public_jwks
from rhip.web.portal.core import Portal, PortalError, Viewer, guarded
from rhip.web.portal.nav import PREFIX

HERE = "/admin/accounts"
USER_ROLES = ("clinician", "public-health", "statistician", "resident", "admin")
CLIENT_ROLES = ("system", "admin")
USER_LIMIT = 200
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
SPLIT = re.compile(r"[\s,;，；]+")


DONE = frozenset({"user_disabled", "user_enabled", "client_added", "client_disabled", "client_enabled"})


def _action(request: Request) -> str:
    action = str(request.path_params["action"])
    if action not in ("disable", "enable"):
        raise PortalError(404, "error.not_found")
    return action


def _done(what: str, name: str) -> Response:
    return RedirectResponse(f"{PREFIX}{HERE}?" + urlencode({"done": what, "name": name}), status_code=303)


def _state(user: Any) -> str:
    if user.disabled:
        return "disabled"
    return "locked" if user.locked_until_us else "active"


def routes(portal: Portal) -> list[Route]:
    """用户与接入系统 routes."""

    async def render(viewer: Viewer, request: Request, status: int = 200, **extra: Any) -> Response:
        accounts = portal.identity().accounts
        done = request.query_params.get("done", "")
        users, clients = await portal.run(viewer, lambda: (accounts.list_users(), accounts.list_clients()))
        uq = request.query_params.get("uq", "").strip()[:64]
        user_role = request.query_params.get("urole", "")
        matching = [
            u
            for u in users
            if uq.lower() in u.username.lower() and (not user_role or u.role.value == user_role)
        ]
        # Newest accounts first when the list is long (a region has many resident accounts).
        shown = sorted(matching, key=lambda u: -u.created_us)[:USER_LIMIT]
        shown.sort(key=lambda u: u.username)
        context: dict[str, Any] = {
            "error_key": "",
            "error_detail": "",
            "error_form": "",
            "created_user": None,
            "new_password": None,
            "done_key": done if done in DONE else "",
            "done_name": request.query_params.get("name", "")[:140],
            "uf": {},
            "cf": {},
            **extra,
        }
        return portal.page(
            viewer,
            "admin_dir/accounts.html",
            status=status,
            active=HERE,
            here=request.url.path,
            users=[
                {
                    "u": u,
                    "state": _state(u),
                    "created": local_us(u.created_us),
                    "patients": " ".join(u.patients),
                }
                for u in shown
            ],
            uq=uq,
            user_role=user_role,
            user_total=len(matching),
            user_limit=USER_LIMIT,
            clients=[
                {
                    "c": c,
                    "key_kind": "jwks"
                    if c.jwks
                    else ("url" if c.jwks_url else ("cert" if c.cert_sha256 else "")),
                }
                for c in clients
            ],
            user_roles=USER_ROLES,
            client_roles=CLIENT_ROLES,
            **context,
        )

    async def page(request: Request) -> Response:
        """Users and client systems."""
        viewer = await admin(portal, request)
        return await render(viewer, request)

    def _refused(error: Exception) -> tuple[str, str]:
        if isinstance(error, PortalError):
            return error.key, error.detail
        if isinstance(error, RhipError):
            return "dir.acct.refused", error.message
        raise error

    async def add_user(request: Request) -> Response:
        """Create a user with a role and its binding; its initial password shown once."""
        viewer, f = await admin_form(portal, request)
        username = f.get("username", "").strip()
        role = f.get("role", "")
        password = f.get("password", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        institution = f.get("institution", "").strip() or None
        organization = f.get("organization", "").strip() or None
        department = f.get("department", "").strip() or None
        district = f.get("district", "").strip() or None
        patients = [p for p in SPLIT.split(f.get("patients", "")) if p]

        def create() -> None:
            try:
                check_binding()
            except PortalError as error:
                # Refused before the identity service saw it: audited as its own refusals are.
                portal.identity().audit.admin(
                    "add-user",
                    f"user:{username}"[:140],
                    outcome=REFUSED,
                    action="C",
                    role=role,
                    reason=portal.messages.text(error.key, "en"),
                )
                raise
            portal.identity().accounts.add_user(
                username,
                password,
                role,
                institution=institution if role == Role.CLINICIAN.value else None,
                organization=organization if role == Role.CLINICIAN.value else None,
                department=department if role == Role.CLINICIAN.value else None,
                district=district if role == Role.PUBLIC_HEALTH.value else None,
                patients=patients if role == Role.RESIDENT.value else (),
            )

        def check_binding() -> None:
            # The binding a role needs to be of any use (the identity service checks the forms).
            if role == Role.CLINICIAN.value and not (institution and organization):
                raise PortalError(400, "dir.acct.need_institution")
            if role == Role.PUBLIC_HEALTH.value and not district:
                raise PortalError(400, "dir.acct.need_district")
            if role == Role.RESIDENT.value and not patients:
                raise PortalError(400, "dir.acct.need_patients")
            if (
                organization
                and role == Role.CLINICIAN.value
                and portal.fhir("GET", f"Organization/{organization}", missing_ok=True) is None
            ):
                raise PortalError(400, "dir.acct.no_organization", organization[:64])
            if role == Role.RESIDENT.value:
                if len(patients) > 20 or not all(FHIR_ID.match(p) for p in patients):
                    raise PortalError(400, "dir.acct.bad_patients")
                query = [("_id", ",".join(patients)), ("_elements", "id"), ("_count", "50")]
                known = {str(r.get("id")) for r in matches(portal.fhir("GET", "Patient", query))}
                unknown = [p for p in patients if p not in known]
                if unknown:
                    raise PortalError(400, "dir.acct.no_patient", " ".join(unknown)[:200])

        try:
            await portal.run(viewer, create)
        except (PortalError, RhipError) as error:
            key, detail = _refused(error)
            if key in ("error.forbidden", "error.signin_needed"):
                raise
            safe = {k: v for k, v in f.items() if k not in ("password", "csrf")}
            return await render(
                viewer, request, 400, error_key=key, error_detail=detail, error_form="user", uf=safe
            )
        return await render(
            viewer, request, 200, created_user=username, new_password=password if generated else None
        )

    def disabling(kind: str, param: str) -> Callable[[Request], Awaitable[Response]]:
        """Disable or enable a user or a client (a disabled user's sessions end, its tokens stop working)."""

        async def toggle(request: Request) -> Response:
            viewer, _ = await admin_form(portal, request)
            name, action = request.path_params[param], _action(request)
            accounts = portal.identity().accounts
            change = accounts.set_user_disabled if kind == "user" else accounts.set_client_disabled
            try:
                await portal.run(viewer, lambda: change(name, action == "disable"))
            except RhipError as error:
                return await render(
                    viewer, request, 400, error_key="dir.acct.refused", error_detail=error.message
                )
            return _done(f"{kind}_{action}d", name)

        return toggle

    async def add_client(request: Request) -> Response:
        """Register a client system with a JWKS URL or its public keys."""
        viewer, f = await admin_form(portal, request)
        client_id = f.get("client_id", "").strip()
        jwks_url = f.get("jwks_url", "").strip() or None
        pasted = f.get("jwks", "").strip()

        def register() -> None:
            if jwks_url is not None and not jwks_url.startswith("https://"):
                # Never a path on the server: the CLI's operator may name a file, a web form may not.
                raise InvalidRequest("a JWKS URL must be an https URL")
            if jwks_url is None and not pasted:
                raise PortalError(400, "dir.acct.need_keys")
            portal.identity().accounts.add_client(
                client_id,
                scopes=f.get("scopes", "").strip() or "system/*.cruds",
                role=f.get("role", "system"),
                name=f.get("name", "").strip(),
                institution=f.get("institution", "").strip() or None,
                organization=f.get("organization", "").strip() or None,
                jwks=public_jwks(pasted) if pasted else None,
                jwks_url=jwks_url,
            )

        try:
            await portal.run(viewer, register)
        except (PortalError, RhipError) as error:
            key, detail = _refused(error)
            if key in ("error.forbidden", "error.signin_needed"):
                raise
            safe = {k: v for k, v in f.items() if k != "csrf"}
            return await render(
                viewer, request, 400, error_key=key, error_detail=detail, error_form="client", cf=safe
            )
        return _done("client_added", client_id)

    return [
        Route(f"{PREFIX}{HERE}", guarded(portal, page), methods=["GET"]),
        Route(f"{PREFIX}{HERE}/users", guarded(portal, add_user), methods=["POST"]),
        Route(
            f"{PREFIX}{HERE}/users/{{username}}/{{action:str}}",
            guarded(portal, disabling("user", "username")),
            methods=["POST"],
        ),
        Route(f"{PREFIX}{HERE}/clients", guarded(portal, add_client), methods=["POST"]),
        Route(
            f"{PREFIX}{HERE}/clients/{{client_id:path}}/{{action:str}}",
            guarded(portal, disabling("client", "client_id")),
            methods=["POST"],
        ),
    ]
