"""Which shared documents (CDA) a visit produces, and the context each is rendered from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rhip.cda.write import RENDERERS
from rhip.cda.write.context import DocumentContext

if TYPE_CHECKING:
    from rhip.synth.care import Visit
    from rhip.synth.region import Region


def render_document(
    code: str, region: Region, v: Visit, patient: dict[str, Any], doc_id: str
) -> bytes | None:
    """The CDA document ``code`` of a visit (None when the visit lacks what the document needs)."""
    render = RENDERERS.get(code)
    if render is None or v.doctor is None:
        return None
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in v.resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    report = None
    if code == "C0007":
        if not v.lab_reports:
            return None
        report = v.lab_reports[0][0]
    context = DocumentContext(
        document_id=doc_id,
        effective_time=v.end,
        patient=patient,
        custodian=region.organization_resource(v.inst),
        author=region.practitioner_resource(v.inst, v.doctor),
        encounter=v.encounter,
        conditions=by_type.get("Condition", []),
        observations=by_type.get("Observation", []),
        medication_requests=by_type.get("MedicationRequest", []),
        immunizations=by_type.get("Immunization", []),
        diagnostic_report=report,
        destination=region.organization_resource(v.referral_to) if v.referral_to else None,
        referral_reason=v.diagnoses[0][1] if v.referral_to and v.diagnoses else None,
    )
    return render(context)
