"""The EMPI's FHIR operations (居民主索引): their OperationDefinitions and how an invocation is read.

Each definition is what ``GET /fhir/OperationDefinition/{id}`` answers, and its contract: the ``in``
parameters of a definition are the only names its operation takes (:mod:`rhip.fhir.rest.operation_input`),
from the URL (GET and POST) and from a ``Parameters`` body (POST). ``$match`` and ``$ihe-pix`` name in ``base`` the
standard definitions they implement (FHIR Patient-match, IHE PIXm).
"""

from __future__ import annotations

from typing import Any

CANONICAL = "https://rhip.dev/fhir/OperationDefinition"
MATCH_GRADE_URL = "http://hl7.org/fhir/StructureDefinition/match-grade"
EXPLANATION_URL = "https://rhip.dev/fhir/StructureDefinition/empi-match-explanation"
PINYIN_URL = "https://rhip.dev/fhir/SearchParameter/Patient-pinyin"
PATIENT_MATCH = "http://hl7.org/fhir/OperationDefinition/Patient-match"  # FHIR R4 Patient/$match
PIXM_PIX = "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"  # IHE PIXm ITI-83
ACTOR_DOC = (
    "Who decides (user id, at most 128 characters). Required unless the X-Rhip-Actor header names the actor; "
    "the authenticated principal will replace both once the security layer is in place."
)
PATIENT_DOC = "A source Patient: its id or Patient/{id}"
MASTER_DOC = "A master (golden) record id"


def param(name: str, use: str, card: str, type_: str | None, doc: str, **kw: Any) -> dict[str, Any]:
    """One OperationDefinition.parameter: ``card`` as ``0..1``; ``type_`` None for one made of parts."""
    low, high = card.split("..")
    out: dict[str, Any] = {"name": name, "use": use, "min": int(low), "max": high}
    if type_ is not None:
        out["type"] = type_
    if type_ == "Reference":
        out["targetProfile"] = ["http://hl7.org/fhir/StructureDefinition/Patient"]
    if kw.get("search_type"):
        out["searchType"] = kw["search_type"]  # only on string parameters (invariant opd-2)
    out["documentation"] = doc
    if kw.get("parts"):
        out["part"] = kw["parts"]
    return out


def _in(name: str, card: str, type_: str, doc: str, search_type: str | None = None) -> dict[str, Any]:
    return param(name, "in", card, type_, doc, search_type=search_type)


def _out(name: str, card: str, type_: str | None, doc: str, **kw: Any) -> dict[str, Any]:
    return param(name, "out", card, type_, doc, **kw)


def definition(
    code: str, title: str, description: str, parameters: list[dict[str, Any]], **kw: Any
) -> dict[str, Any]:
    """An OperationDefinition of a type-level operation on Patient (``instance``, ``affects_state``, ``base``)."""
    op_id = f"Patient-{code}"
    out: dict[str, Any] = {
        "resourceType": "OperationDefinition",
        "id": op_id,
        "url": f"{CANONICAL}/{op_id}",
        "name": "".join(word.title() for word in code.split("-")),
        "title": title,
        "status": "active",
        "kind": "operation",
        "publisher": "rhip",
        "description": description,
        "affectsState": bool(kw.get("affects_state")),
        "code": code,
        "resource": ["Patient"],
        "system": False,
        "type": True,
        "instance": bool(kw.get("instance")),
        "parameter": parameters,
    }
    if kw.get("base"):
        out["base"] = kw["base"]
    return out


# Parts named by the field they hold (name, birth_date, id_number …): declared once as '{field}'.
FIELD_PARTS = [_out("{field}", "0..1", "string", "One part per field, named by the field")]
_COUNT = "How many to return (default {0}, at most {1})"
_OFFSET = "How many to skip (paging; default 0)"

MATCH = definition(
    "match",
    "Find the master records a Patient may be (PDQm / Patient-match)",
    "Scores a Patient that is not stored against the resident index (居民主索引) and answers the candidate "
    "master (golden) records, best first, each with its probability (search.score), its match-grade "
    "(certain, probable, possible) and how each field compared (extension empi-match-explanation).",
    [
        _in("resource", "1..1", "Resource", "The Patient to match (not stored)"),
        _in("onlyCertainMatches", "0..1", "boolean", "Answer only a certain match (one at most)"),
        _in("count", "0..1", "integer", _COUNT.format(10, 100)),
        _out("return", "1..1", "Bundle", "A searchset of master Patients with score and match-grade"),
    ],
    base=PATIENT_MATCH,
)

IHE_PIX = definition(
    "ihe-pix",
    "Cross-reference a Patient identifier (IHE PIXm ITI-83)",
    "Every other identifier of the person an identifier belongs to (身份证号, 健康卡, each institution's "
    "MRN, the master id in urn:rhip:empi:master) and every source Patient linked to that person. An unknown "
    "sourceIdentifier is a 404 (not-found); a targetSystem nobody uses answers no identifiers.",
    [
        _in("sourceIdentifier", "1..1", "string", "The identifier to cross-reference, system|value", "token"),
        _in("targetSystem", "0..*", "string", "Only identifiers of these assigning authorities", "uri"),
        _in("_format", "0..1", "string", "The response format (JSON only)", "token"),
        _out("targetIdentifier", "0..*", "Identifier", "Another identifier of the same person"),
        _out("targetId", "0..*", "Reference", "A source Patient of the same person"),
    ],
    base=PIXM_PIX,
)

MASTER = definition(
    "empi-master",
    "The master record of a Patient",
    "The master (golden) Patient (主索引记录) of a source Patient, or a master by its own id. At instance "
    "level the id is either.",
    [
        _in("patient", "0..1", "string", "At type level: a source Patient or a master id"),
        _out("return", "1..1", "Patient", "The golden Patient, tagged urn:rhip:empi|master"),
    ],
    instance=True,
)

MASTERS = definition(
    "empi-masters",
    "Search master records",
    "Master (golden) records whose sources match every criterion given; at least one of identifier, phone, "
    "name or pinyin (姓名拼音). A page holding _count records has a next link.",
    [
        _in("identifier", "0..1", "string", "An identifier of a source record, system|value", "token"),
        _in("phone", "0..1", "string", "A phone number (mobile or landline)", "string"),
        _in("name", "0..1", "string", "A full name (汉字 or pinyin)", "string"),
        _in("pinyin", "0..1", "string", "Full-name pinyin, e.g. zhangwei", "string"),
        _in("birthdate", "0..1", "string", "The birth date, YYYY-MM-DD", "date"),
        _in("gender", "0..1", "string", "male | female", "token"),
        _in("_count", "0..1", "integer", _COUNT.format(20, 200)),
        _in("_offset", "0..1", "integer", _OFFSET),
        _out("return", "1..1", "Bundle", "A searchset of golden Patients"),
    ],
)

_LINK_PARTS = [
    _out("patient", "1..1", "Reference", "The source Patient"),
    _out("master", "1..1", "string", "Its master id"),
    _out("state", "1..1", "code", "match | possible-match"),
    _out("origin", "1..1", "code", "auto | manual (manual links are never changed by matching)"),
    _out("probability", "0..1", "decimal", "The match probability (none for the first record)"),
    _out("updated", "1..1", "instant", "When the link was last set"),
]

QUERY_LINKS = definition(
    "empi-query-links",
    "The links of a source Patient or of a master",
    "The link (关联) of one source Patient to its master, or the links of every record of a master. Give "
    "patient or master.",
    [
        _in("patient", "0..1", "string", PATIENT_DOC),
        _in("master", "0..1", "string", MASTER_DOC),
        _out("link", "0..*", None, "One link", parts=_LINK_PARTS),
    ],
)

_MOVE_OUT = [
    _out("patient", "1..1", "string", "The source Patient id"),
    _out("master", "1..1", "string", "The master it now belongs to"),
    _out("previous", "1..1", "string", "The master it belonged to"),
]

LINK = definition(
    "empi-link",
    "Link a source Patient to a master by hand",
    "A manual link (人工关联): the record moves to the master and stays there whatever automatic matching "
    "later finds. Refused (409) when a person decided it is not one of that master's records.",
    [
        _in("patient", "1..1", "string", PATIENT_DOC),
        _in("master", "1..1", "string", MASTER_DOC),
        _in("actor", "0..1", "string", ACTOR_DOC),
        *_MOVE_OUT,
    ],
    affects_state=True,
)

UNLINK = definition(
    "empi-unlink",
    "Take a source Patient out of its master",
    "A manual unlink (拆分): the record gets a master of its own and is never joined again automatically "
    "with the records it left.",
    [_in("patient", "1..1", "string", PATIENT_DOC), _in("actor", "0..1", "string", ACTOR_DOC), *_MOVE_OUT],
    affects_state=True,
)

MERGE = definition(
    "empi-merge",
    "Merge two masters",
    "Moves every record of one master into another (合并) and retires the first; $empi-unmerge undoes it.",
    [
        _in("from", "1..1", "string", "The master that is merged and retired"),
        _in("into", "1..1", "string", "The master that receives its records"),
        _in("actor", "0..1", "string", ACTOR_DOC),
        _out("from", "1..1", "string", "The retired master"),
        _out("into", "1..1", "string", "The surviving master"),
        _out("moved", "0..*", "string", "The source Patients that moved"),
    ],
    affects_state=True,
)

UNMERGE = definition(
    "empi-unmerge",
    "Undo the merge of a master",
    "Brings the records a merge moved back to the merged master (撤销合并), as they were before.",
    [
        _in("master", "1..1", "string", "The merged (retired) master"),
        _in("actor", "0..1", "string", ACTOR_DOC),
        _out("master", "1..1", "string", "The master, active again"),
        _out("from", "1..1", "string", "The master the records come back from"),
        _out("restored", "0..*", "string", "The source Patients that came back"),
    ],
    affects_state=True,
)

_ITEM_PARTS = [
    _out("id", "1..1", "integer", "The review item id"),
    _out("patient", "1..1", "string", "The source Patient"),
    _out("master", "1..1", "string", "The master it may belong to"),
    _out("probability", "1..1", "decimal", "The match probability"),
    _out("reason", "1..1", "string", "Why it was not linked automatically"),
    _out("status", "1..1", "code", "open | linked | separate | stale"),
    _out("actor", "0..1", "string", "Who decided it"),
]

REVIEW_LIST = definition(
    "empi-review-list",
    "The review queue",
    "Possible matches waiting for a person's decision (审核队列), newest first.",
    [
        _in("status", "0..1", "code", "open (default) | linked | separate | stale | all"),
        _in("_count", "0..1", "integer", _COUNT.format(20, 200)),
        _in("_offset", "0..1", "integer", _OFFSET),
        _out("total", "1..1", "integer", "How many items have that status"),
        _out("item", "0..*", None, "One review item", parts=_ITEM_PARTS),
    ],
)

_CANDIDATE_PARTS = [
    _out("patient", "1..1", "string", "Its source Patient"),
    _out("record", "1..1", None, "Its fields", parts=FIELD_PARTS),
    _out("levels", "1..1", None, "How each field compares", parts=FIELD_PARTS),
    _out("probability", "1..1", "decimal", "The pair's probability"),
]

REVIEW_SHOW = definition(
    "empi-review-show",
    "One review item with both sides",
    "A review item (审核) with the record's fields and, for each record of the candidate master, its fields, "
    "how each field compares (exact, close, different, missing …) and the pair's probability.",
    [
        _in("id", "1..1", "integer", "The review item id"),
        _out("id", "1..1", "integer", "The review item id"),
        _out("status", "1..1", "code", "open | linked | separate | stale"),
        _out("reason", "1..1", "string", "Why it was not linked automatically"),
        _out("probability", "1..1", "decimal", "The match probability"),
        _out("record", "1..1", None, "The record's fields", parts=FIELD_PARTS),
        _out("master", "1..1", "string", "The candidate master"),
        _out("candidate", "0..*", None, "A record of the candidate master", parts=_CANDIDATE_PARTS),
    ],
)

REVIEW_DECIDE = definition(
    "empi-review-decide",
    "Decide a review item",
    "A person's decision (人工审核): link (the same person) or separate (different people, never joined "
    "automatically).",
    [
        _in("id", "1..1", "integer", "The review item id"),
        _in("decision", "1..1", "code", "link | separate"),
        _in("actor", "0..1", "string", ACTOR_DOC),
        _out("patient", "1..1", "string", "The source Patient"),
        _out("master", "1..1", "string", "The master it belongs to now"),
        _out("previous", "0..1", "string", "After link: the master it belonged to"),
        _out("separated_from", "0..1", "string", "After separate: the master it was separated from"),
    ],
    affects_state=True,
)

ALL = (
    MATCH, IHE_PIX, MASTER, MASTERS, QUERY_LINKS, LINK, UNLINK, MERGE, UNMERGE,
    REVIEW_LIST, REVIEW_SHOW, REVIEW_DECIDE,
)  # fmt: skip
