"""The EMPI's FHIR interface: operations on Patient and the ``pinyin`` search parameter.

``register`` adds them to the FHIR API's :class:`Extensions`. Their definitions, and the reading of an
invocation's parameters against them, are in :mod:`rhip.empi.operation_definitions`.

Choices worth knowing:

- Master (golden) Patients live in the EMPI, not in the FHIR store: ``GET Patient/{master}`` does not find
  them, ``Patient/{master}/$empi-master`` does. Bundles of masters therefore carry no ``fullUrl``.
- ``$ihe-pix`` follows PIXm ITI-83: the sourceIdentifier itself is not answered; an identifier the index
  does not hold is a 404 ``not-found``. The index keeps no list of assigning authorities, so an unknown
  source domain is also that 404 (not PIXm's 400), and an unknown targetSystem answers no identifiers (not
  PIXm's 403). ``targetId`` lists every source Patient of the person, whatever targetSystem says. The
  master id (``urn:rhip:empi:master``) is one of the person's identifiers, and may be the source.
- The actor of a manual decision is the ``actor`` parameter, else the ``X-Rhip-Actor`` header. There is
  no authentication yet: the security layer (#6) will replace both with the authenticated principal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from rhip.core.clock import fhir_instant
from rhip.core.errors import InvalidRequest, ResourceNotFound
from rhip.core.ids import is_valid_fhir_id, new_resource_id
from rhip.empi import manual, queries
from rhip.empi import operation_definitions as defs
from rhip.empi.service import EmpiService
from rhip.empi.survivorship import MASTER_SYSTEM
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.extensions import Extensions, OperationSpec, SearchParamExtension
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.operation_input import OperationInput, inputs, operation_input
from rhip.fhir.rest.outcome import dumps

ACTOR_HEADER = "x-rhip-actor"
REVIEW_STATUSES = ("open", "linked", "separate", "stale", "all")
GENDERS = ("male", "female", "other", "unknown")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT32 = 2**31 - 1


# -- answers ------------------------------------------------------------------------------------------


def parts_of(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A JSON-ish dict as Parameters parameters (or parts): lists repeat the name, dicts nest, None is left out."""
    out: list[dict[str, Any]] = []
    for name, value in values.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            part = _parameter(name, item)
            if part is not None:
                out.append(part)
    return out


def _parameter(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    if isinstance(value, int) and -_INT32 - 1 <= value <= _INT32:
        return {"name": name, "valueInteger": value}
    if isinstance(value, int | float):
        return {"name": name, "valueDecimal": value}  # FHIR R4 integers are 32-bit
    if isinstance(value, Mapping):
        if isinstance(value.get("resourceType"), str):
            return {"name": name, "resource": dict(value)}
        nested = parts_of(value)
        return {"name": name, "part": nested} if nested else None  # a parameter needs a value or parts
    return {"name": name, "valueString": str(value)}


def parameters(parts: list[dict[str, Any]]) -> FhirResponse:
    """A 200 answer holding a Parameters resource."""
    return FhirResponse(200, dumps({"resourceType": "Parameters", "parameter": parts}))


def searchset(
    resources: list[dict[str, Any]], extras: list[dict[str, Any]], links: list[dict[str, str]]
) -> FhirResponse:
    """A searchset Bundle of master Patients (``extras``: each entry's ``search`` and other elements)."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "meta": {"lastUpdated": fhir_instant(datetime.now(UTC))},
        "type": "searchset",
    }
    if links:
        bundle["link"] = links
    bundle["entry"] = [{**extra, "resource": r} for r, extra in zip(resources, extras, strict=True)]
    return FhirResponse(200, dumps(bundle))


def local_id(value: str, name: str) -> str:
    """The id in ``id``, ``Patient/id`` or ``[base]/Patient/id``."""
    text = value.strip()
    if "/" in text:
        kind, _, text = text.rstrip("/").rpartition("/")
        if kind.rpartition("/")[2] != "Patient":
            raise InvalidRequest(f"'{name}' must be an id or Patient/{{id}}", expression=[name])
    if not is_valid_fhir_id(text):
        raise InvalidRequest(f"'{name}' is not a valid id", expression=[name])
    return text


def _instant(us: int) -> str:
    return fhir_instant(datetime.fromtimestamp(us / 1_000_000, UTC))


def _actor(req: FhirRequest, inp: OperationInput) -> str:
    # Until the security layer (#6) supplies the authenticated principal.
    return inp.one("actor") or (req.header(ACTOR_HEADER) or "").strip()


# -- operations ---------------------------------------------------------------------------------------


def match(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$match: candidate masters with score, match-grade and per-field explanation."""
    found = queries.match(
        service, inp.resource("resource"), inp.integer("count", 10, 1, 100), inp.boolean("onlyCertainMatches")
    )
    extras = [
        {
            "extension": [
                {
                    "url": defs.EXPLANATION_URL,
                    "extension": [{"url": k, "valueString": v} for k, v in c.explanation.items()],
                }
            ],
            "search": {
                "extension": [{"url": defs.MATCH_GRADE_URL, "valueCode": c.grade}],
                "mode": "match",
                "score": round(c.probability, 6),
            },
        }
        for c in found
    ]
    return searchset([c.master for c in found], extras, [])


def pix(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$ihe-pix (PIXm ITI-83): the person's other identifiers and source Patients."""
    system, bar, value = inp.required("sourceIdentifier").rpartition("|")
    if not bar or not system or not value:
        raise InvalidRequest("sourceIdentifier must be system|value", expression=["sourceIdentifier"])
    targets = inp.many("targetSystem")
    idents, patient_ids = _person(service, system, value)
    if not patient_ids:
        raise ResourceNotFound(
            "sourceIdentifier Patient Identifier not found", expression=["sourceIdentifier"]
        )
    parts = [
        {"name": "targetIdentifier", "valueIdentifier": {"system": s, "value": v}}
        for s, v in dict.fromkeys(idents)
        if (s, v) != (system, value) and (not targets or s in targets)
    ]
    parts += [{"name": "targetId", "valueReference": {"reference": f"Patient/{p}"}} for p in patient_ids]
    return parameters(parts)


def _person(service: EmpiService, system: str, value: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The identifiers (with the master id) and the source Patients of the person an identifier names."""
    if system == MASTER_SYSTEM:
        patient_ids = [str(link["patient"]) for link in queries.links(service, None, value)]
        if not patient_ids:
            return [], []
        golden = queries.master_of(service, value)
        return [(i["system"], i["value"]) for i in golden.get("identifier", [])], patient_ids
    idents, patient_ids = queries.pix(service, system, value, [])
    master_id = _master_id(service, patient_ids[0]) if patient_ids else None
    return idents + ([(MASTER_SYSTEM, master_id)] if master_id else []), patient_ids


def _master_id(service: EmpiService, patient_id: str) -> str | None:
    try:
        links = queries.links(service, patient_id, None)
    except ResourceNotFound:  # unlinked (deleted) since: answer the identifiers without the master's
        return None
    return str(links[0]["master"]) if links else None


def master(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-master and Patient/{id}/$empi-master: the golden Patient."""
    if rid is not None and inp.one("patient") is not None:
        raise InvalidRequest("Patient/{id}/$empi-master takes no 'patient'", expression=["patient"])
    target = rid if rid is not None else local_id(inp.required("patient"), "patient")
    golden = queries.master_of(service, target)
    version = (golden.get("meta") or {}).get("versionId")
    return FhirResponse(200, dumps(golden), {"ETag": f'W/"{version}"'} if version else {})


def masters(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-masters: golden Patients by identifier, phone, name, pinyin, birth date, gender."""
    criteria = {
        n: v for n in ("identifier", "phone", "name", "pinyin", "birthdate", "gender") if (v := inp.one(n))
    }
    if "identifier" in criteria and "|" not in criteria["identifier"]:
        raise InvalidRequest("identifier must be system|value", expression=["identifier"])
    if "birthdate" in criteria and not _DATE.match(criteria["birthdate"]):
        raise InvalidRequest("birthdate must be a date, YYYY-MM-DD", expression=["birthdate"])
    if "gender" in criteria and criteria["gender"] not in GENDERS:
        raise InvalidRequest(f"gender must be one of {', '.join(GENDERS)}", expression=["gender"])
    count = inp.integer("_count", 20, 0, 200)
    offset = inp.integer("_offset", 0, 0, _INT32)
    found = queries.search_masters(service, criteria, count, offset)
    url = f"{req.base_url}/Patient/$empi-masters?"
    links = [
        {
            "relation": "self",
            "url": url + urlencode([*criteria.items(), ("_count", count), ("_offset", offset)]),
        }
    ]
    if count and len(found) == count:
        after = [*criteria.items(), ("_count", count), ("_offset", offset + count)]
        links.append({"relation": "next", "url": url + urlencode(after)})
    return searchset(found, [{"search": {"mode": "match"}}] * len(found), links)


def query_links(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-query-links: the links of a source Patient or of a master."""
    patient, master_id = inp.one("patient"), inp.one("master")
    if patient is not None and master_id is not None:
        raise InvalidRequest("query links by patient or by master, not both", code="RHIP-EMPI-0015")
    patient_id = local_id(patient, "patient") if patient is not None else None
    master_key = local_id(master_id, "master") if master_id is not None else None
    parts = []
    for link in queries.links(service, patient_id, master_key):
        fields: list[dict[str, Any]] = [
            {"name": "patient", "valueReference": {"reference": f"Patient/{link['patient']}"}},
            {"name": "master", "valueString": link["master"]},
            {"name": "state", "valueCode": link["state"]},
            {"name": "origin", "valueCode": link["origin"]},
        ]
        if link["probability"] is not None:
            fields.append({"name": "probability", "valueDecimal": link["probability"]})
        fields.append({"name": "updated", "valueInstant": _instant(link["updated_us"])})
        parts.append({"name": "link", "part": fields})
    return parameters(parts)


def link(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-link: a manual link of a source Patient to a master."""
    patient = local_id(inp.required("patient"), "patient")
    target = local_id(inp.required("master"), "master")
    return parameters(parts_of(manual.link(service, patient, target, _actor(req, inp))))


def unlink(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-unlink: a source Patient leaves its master for one of its own."""
    patient = local_id(inp.required("patient"), "patient")
    return parameters(parts_of(manual.unlink(service, patient, _actor(req, inp))))


def merge(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-merge: every record of one master moves into another."""
    source = local_id(inp.required("from"), "from")
    target = local_id(inp.required("into"), "into")
    return parameters(parts_of(manual.merge(service, source, target, _actor(req, inp))))


def unmerge(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-unmerge: undo a merge."""
    target = local_id(inp.required("master"), "master")
    return parameters(parts_of(manual.unmerge(service, target, _actor(req, inp))))


def review_list(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-review-list: the review queue (审核队列), newest first."""
    status = inp.one("status") or "open"
    if status not in REVIEW_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(REVIEW_STATUSES)}", expression=["status"])
    count = inp.integer("_count", 20, 0, 200)
    offset = inp.integer("_offset", 0, 0, _INT32)
    items, total = queries.review_list(service, None if status == "all" else status, count, offset)
    return parameters(parts_of({"total": total, "item": items}))


def review_show(service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None) -> FhirResponse:
    """Patient/$empi-review-show: a review item with the record and each candidate record, field by field."""
    item = dict(queries.review_item(service, _review_id(inp)))
    item["candidate"] = item.pop("candidates", [])  # one parameter per candidate: a singular name
    return parameters(parts_of(item))


def review_decide(
    service: EmpiService, req: FhirRequest, inp: OperationInput, rid: str | None
) -> FhirResponse:
    """Patient/$empi-review-decide: link or separate."""
    result = manual.decide_review(service, _review_id(inp), inp.required("decision"), _actor(req, inp))
    return parameters(parts_of(result))


def _review_id(inp: OperationInput) -> int:
    inp.required("id")
    return inp.integer("id", 0, 1, 2**63 - 1)


Handler = Callable[[EmpiService, FhirRequest, OperationInput, str | None], FhirResponse]
GET_POST = ("GET", "POST")
OPERATIONS: tuple[tuple[dict[str, Any], Handler, tuple[str, ...]], ...] = (
    (defs.MATCH, match, ("POST",)),
    (defs.IHE_PIX, pix, GET_POST),
    (defs.MASTER, master, ("GET",)),
    (defs.MASTERS, masters, GET_POST),
    (defs.QUERY_LINKS, query_links, GET_POST),
    (defs.LINK, link, ("POST",)),
    (defs.UNLINK, unlink, ("POST",)),
    (defs.MERGE, merge, ("POST",)),
    (defs.UNMERGE, unmerge, ("POST",)),
    (defs.REVIEW_LIST, review_list, ("GET",)),
    (defs.REVIEW_SHOW, review_show, ("GET",)),
    (defs.REVIEW_DECIDE, review_decide, ("POST",)),
)


def _bind(service: EmpiService, definition: dict[str, Any], handler: Handler) -> Callable[..., FhirResponse]:
    code, accepted = str(definition["code"]), inputs(definition)

    def run(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
        return handler(service, req, operation_input(req, code, accepted), rid)

    return run


def pinyin_resolver(service: EmpiService) -> Callable[[str, list[str]], list[str] | None]:
    """The ``pinyin`` search parameter: source Patients whose full-name pinyin is one of the values."""

    def resolve(modifier: str, values: list[str]) -> list[str] | None:
        if modifier not in ("", "exact"):
            raise InvalidRequest(f"pinyin does not support :{modifier}", expression=[f"pinyin:{modifier}"])
        return queries.pinyin_ids(service, values)

    return resolve


def register(extensions: Extensions, service: EmpiService) -> None:
    """Add the EMPI's operations and search parameters to the FHIR API."""
    for definition, handler, methods in OPERATIONS:
        spec = OperationSpec(
            code=str(definition["code"]),
            resource_type="Patient",
            type_level=bool(definition["type"]),
            instance_level=bool(definition["instance"]),
            methods=methods,
            handler=_bind(service, definition, handler),
            definition=definition,
        )
        extensions.add_operation(spec)
    extensions.add_search_param(
        SearchParamExtension(
            resource_type="Patient",
            name="pinyin",
            type="string",
            documentation="The full name in pinyin (姓名拼音), e.g. zhangwei or zhang wei; spaces and case ignored",
            definition_url=defs.PINYIN_URL,
            resolve=pinyin_resolver(service),
        )
    )
