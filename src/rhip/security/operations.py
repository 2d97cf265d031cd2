"""Which roles may invoke which FHIR operations.

Operations that read through the repository they are handed (``$cda``, ``$html``, ``$verify-signature``)
are open to every role: the secured repository filters what they read. Operations that answer from their
own data (the resident index's ``$match``, ``$ihe-pix``) or change it (links, merges, review decisions)
are listed here; an operation missing from the table is for administrators only (fail closed).
"""

from __future__ import annotations

from rhip.security.audit_port import AuditSink
from rhip.security.context import current_principal
from rhip.security.decision import Decision
from rhip.security.principal import Role

ANY_ROLE = frozenset(Role)
# Public-health officers are district-scoped: they find residents through their district's searches.
FINDERS = frozenset({Role.ADMIN, Role.PLATFORM, Role.CLINICIAN, Role.SYSTEM})
ADMINS = frozenset({Role.ADMIN, Role.PLATFORM})

# code -> roles; the codes of rhip.empi.fhir_api, rhip.documents.fhir_operations,
# rhip.security.signatures.fhir_api and rhip.terminology.fhir_api.
OPERATION_ROLES: dict[str, frozenset[Role]] = {
    "cda": ANY_ROLE,
    "html": ANY_ROLE,
    "verify-signature": ANY_ROLE,
    "sign": frozenset({Role.ADMIN, Role.PLATFORM, Role.SYSTEM}),
    # Finding a resident (patient directory): demographics only, never the clinical record.
    "match": FINDERS,
    "ihe-pix": FINDERS,
    "empi-master": FINDERS,
    "empi-masters": FINDERS,
    "empi-query-links": FINDERS,
    # Terminology (rhip.terminology.fhir_api): code systems, value sets and concept maps, no resident's data.
    "lookup": ANY_ROLE,
    "validate-code": ANY_ROLE,
    "subsumes": ANY_ROLE,
    "expand": ANY_ROLE,
    "translate": ANY_ROLE,
}


class OperationGate:
    """Refuses operations the caller's role may not invoke, and audits every invocation."""

    def __init__(self, audit: AuditSink, roles: dict[str, frozenset[Role]] | None = None) -> None:
        self.audit = audit
        self.roles = roles if roles is not None else OPERATION_ROLES

    def __call__(self, resource_type: str | None, code: str, instance: str | None) -> None:
        """Allow or refuse ``[type/][id/]$code`` for the current caller."""
        principal = current_principal()
        allowed = principal.role in self.roles.get(code, ADMINS)
        target = [(resource_type or "", instance or "", None)] if resource_type else []
        self.audit.accessed(
            principal,
            action="E",
            subtype="operation",
            resources=target,
            patients=[instance] if resource_type == "Patient" and instance else [],
            outcome="0" if allowed else "4",
            query=f"${code}",
            detail={"reason": "role" if not allowed else "operation"},
        )
        if not allowed:
            Decision(False, "role").require()
