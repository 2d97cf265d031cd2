"""Who is asking: the principal every door establishes before it touches resident data."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from rhip.security.scopes import Scope, parse_scopes


class Role(StrEnum):
    """Platform roles (intersected with the token's SMART scopes)."""

    ADMIN = "admin"  # platform administrator (平台管理员)
    SYSTEM = "system"  # an institution's system: writes as its institution (机构系统)
    CLINICIAN = "clinician"  # bound to an institution and department (医生)
    PUBLIC_HEALTH = "public-health"  # district scope (公共卫生/疾控)
    STATISTICIAN = "statistician"  # aggregates only, never an identifiable record (统计人员)
    RESIDENT = "resident"  # own compartment, plus children as proxy (居民)
    PLATFORM = "platform"  # the platform's own processes (matching, imports run by an operator)


# Purpose of use (v3 PurposeOfUse) each role asks with by default; break-the-glass asks ETREAT.
DEFAULT_PURPOSE = {
    Role.ADMIN: "HOPERAT",
    Role.SYSTEM: "TREAT",
    Role.CLINICIAN: "TREAT",
    Role.PUBLIC_HEALTH: "PUBHLTH",
    Role.STATISTICIAN: "HRESCH",
    Role.RESIDENT: "PATRQT",
    Role.PLATFORM: "HOPERAT",
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``subject`` is ``user:<username>``, ``client:<client id>`` or ``platform:<process>``; never a name or
    an ID number. ``institution`` is the institution code (医疗机构代码, identifier system
    ``urn:oid:2.16.156.10011.1.5``, MSH-4 of its HL7 v2 messages); ``organization`` its Organization id
    when known. ``patients`` are the Patient ids a resident may see (own records and children's).
    """

    subject: str
    role: Role
    scopes: frozenset[Scope]
    institution: str | None = None
    organization: str | None = None
    department: str | None = None
    district: str | None = None  # GB/T 2260 code (prefix) of a public-health officer's district
    patients: tuple[str, ...] = ()
    # Further institutions it acts for: a batch of HL7 v2 messages of several institutions, each checked
    # against its connection first (an institution's data is still only changed by that institution).
    institutions: tuple[str, ...] = ()
    client_id: str | None = None
    token_id: str | None = None  # jti of the access token
    session: str | None = None  # refresh-token family of a portal session
    address: str | None = None  # network address of the caller, for the audit log
    purpose: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __hash__(self) -> int:
        """Computed once: a principal keys the policy's caches several times in every request."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(
                (
                    self.subject, self.role, self.scopes, self.institution, self.organization,
                    self.department, self.district, self.patients, self.institutions, self.client_id,
                    self.token_id, self.session, self.address, self.purpose,
                )
            )  # fmt: skip
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def purpose_of_use(self) -> str:
        """The purpose this principal acts for (explicit, or its role's default)."""
        return self.purpose or DEFAULT_PURPOSE[self.role]

    @property
    def all_institutions(self) -> tuple[str, ...]:
        """The institution and the further ones it acts for."""
        first = (self.institution,) if self.institution else ()
        return first + tuple(i for i in self.institutions if i != self.institution)

    def may(self, resource_type: str, permission: str) -> bool:
        """Whether any of the token's scopes grants ``permission`` (c r u d s) on ``resource_type``."""
        return any(s.allows(resource_type, permission) for s in self.scopes)


def platform_principal(process: str, *, address: str | None = None) -> Principal:
    """The principal of one of the platform's own processes (an import, the matcher): every scope."""
    return Principal(f"platform:{process}", Role.PLATFORM, parse_scopes("system/*.cruds"), address=address)
