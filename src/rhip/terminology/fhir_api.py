"""The terminology operations of the FHIR API: ``CodeSystem/$lookup``, ``CodeSystem/$validate-code``,
``CodeSystem/$subsumes``, ``ValueSet/$expand``, ``ValueSet/$validate-code`` and ``ConceptMap/$translate``
(FHIR R4 terminology service).

Each takes its parameters from the URL (GET) or a ``Parameters`` body (POST) and answers ``Parameters``
(``$expand``: a ValueSet with its expansion). A code system or value set the platform does not hold is a
404; a code missing from a code system is a 404 for ``$lookup`` and ``result=false`` for ``$validate-code``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from rhip.core.errors import InvalidRequest, ResourceNotFound
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.extensions import Extensions, OperationSpec
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.operation_input import OperationInput, inputs, operation_input
from rhip.fhir.rest.outcome import dumps
from rhip.terminology.service import TerminologyService, UnknownTerminology

CANONICAL = "https://rhip.dev/fhir/OperationDefinition"
BASE = "http://hl7.org/fhir/OperationDefinition"
MAX_EXPAND = 1000  # members in one page of $expand

Handler = Callable[[TerminologyService, OperationInput], dict[str, Any]]


def _param(name: str, card: str, type_: str, doc: str, use: str = "in") -> dict[str, Any]:
    low, high = card.split("..")
    out: dict[str, Any] = {"name": name, "use": use, "min": int(low), "max": high, "documentation": doc}
    if type_:  # a parameter made of parts has no type
        out["type"] = type_
    return out


def _definition(rtype: str, code: str, title: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    op_id = f"{rtype}-{code}"
    return {
        "resourceType": "OperationDefinition",
        "id": op_id,
        "url": f"{CANONICAL}/{op_id}",
        "name": "".join(w.title() for w in f"{rtype}-{code}".split("-")),
        "title": title,
        "status": "active",
        "kind": "operation",
        "publisher": "rhip",
        "description": title,
        "affectsState": False,
        "code": code,
        "base": f"{BASE}/{op_id}",
        "resource": [rtype],
        "system": False,
        "type": True,
        "instance": False,
        "parameter": params,
    }


SYSTEM_IN = _param(
    "system", "1..1", "uri", "The code system's canonical URL, e.g. urn:oid:2.16.156.10011.2.3.3.4"
)
CODE_IN = _param("code", "1..1", "code", "The code")
DATE_IN = _param("date", "0..1", "dateTime", "Check the code is in force on this day (YYYY-MM-DD)")
DISPLAY_IN = _param("display", "0..1", "string", "A display to check (Chinese or English)")
VALIDATE_OUT = [
    _param("result", "1..1", "boolean", "Whether the code is valid", "out"),
    _param("message", "0..1", "string", "Why not", "out"),
    _param("display", "0..1", "string", "The code's display", "out"),
]

LOOKUP = _definition(
    "CodeSystem",
    "lookup",
    "A code's display, designations and properties (parent, children, validity, verification)",
    [
        SYSTEM_IN,
        CODE_IN,
        _param("name", "1..1", "string", "The code system's name", "out"),
        _param("version", "0..1", "string", "The code system's version", "out"),
        _param("display", "1..1", "string", "The code's display", "out"),
    ],
)
CS_VALIDATE = _definition(
    "CodeSystem",
    "validate-code",
    "Whether a code is in a code system (and in force on a day)",
    [
        _param("url", "1..1", "uri", "The code system's canonical URL"),
        CODE_IN,
        DISPLAY_IN,
        DATE_IN,
        *VALIDATE_OUT,
    ],
)
SUBSUMES = _definition(
    "CodeSystem",
    "subsumes",
    "How two codes of one code system relate in its hierarchy",
    [
        SYSTEM_IN,
        _param("codeA", "1..1", "code", "The first code"),
        _param("codeB", "1..1", "code", "The second code"),
        _param("outcome", "1..1", "code", "equivalent | subsumes | subsumed-by | not-subsumed", "out"),
    ],
)
EXPAND = _definition(
    "ValueSet",
    "expand",
    "A value set's members, filtered by text and paged",
    [
        _param("url", "1..1", "uri", "The value set's canonical URL"),
        _param(
            "filter", "0..1", "string", "Members whose code or display (Chinese or English) contains this"
        ),
        _param("offset", "0..1", "integer", "Members to skip"),
        _param("count", "0..1", "integer", f"Members to return (at most {MAX_EXPAND})"),
        _param("return", "1..1", "ValueSet", "The value set with its expansion", "out"),
    ],
)
VS_VALIDATE = _definition(
    "ValueSet",
    "validate-code",
    "Whether a code is in a value set (and in its code system, in force on a day)",
    [
        _param("url", "1..1", "uri", "The value set's canonical URL"),
        CODE_IN,
        _param("system", "0..1", "uri", "The code's system"),
        DISPLAY_IN,
        DATE_IN,
        *VALIDATE_OUT,
    ],
)
TRANSLATE = _definition(
    "ConceptMap",
    "translate",
    "The standard codes a local code maps to (the institutions' local dictionaries, 本地字典对照)",
    [
        _param("url", "0..1", "uri", "Only this ConceptMap's mappings"),
        _param("system", "1..1", "uri", "The local code system"),
        CODE_IN,
        _param("targetsystem", "0..1", "uri", "Only mappings to this code system"),
        _param("result", "1..1", "boolean", "Whether some mapping says what the code stands for", "out"),
        _param("message", "0..1", "string", "Why not", "out"),
        _param(
            "match", "0..*", "", "equivalence, concept (Coding) and source (the map) of each mapping", "out"
        ),
    ],
)


def _day(inp: OperationInput) -> date | None:
    text = inp.one("date")
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidRequest(
            f"'date' must be a date (YYYY-MM-DD), not {text!r}", expression=["date"]
        ) from None


def _validation(result: Any) -> dict[str, Any]:
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result.result}]
    if result.message:
        out.append({"name": "message", "valueString": result.message})
    if result.display:
        out.append({"name": "display", "valueString": result.display})
    return {"resourceType": "Parameters", "parameter": out}


def lookup(service: TerminologyService, inp: OperationInput) -> dict[str, Any]:
    """``CodeSystem/$lookup``."""
    system, code = inp.required("system"), inp.required("code")
    found = service.lookup(system, code)
    if found is None:
        raise ResourceNotFound(f"Code {code!r} is not in the code system {system}")
    c, cs = found.concept, found.system
    out: list[dict[str, Any]] = [
        {"name": "name", "valueString": cs.name},
        {"name": "version", "valueString": cs.version},
        {"name": "display", "valueString": c.display},
    ]
    if c.display_en:
        out.append(
            {
                "name": "designation",
                "part": [
                    {"name": "language", "valueCode": "en"},
                    {"name": "value", "valueString": c.display_en},
                ],
            }
        )
    properties: list[tuple[str, dict[str, Any]]] = [("parent", {"valueCode": p}) for p in found.ancestors[:1]]
    properties += [("child", {"valueCode": child}) for child in found.children]
    if c.valid_from is not None:
        properties.append(("valid-from", {"valueDateTime": c.valid_from.isoformat()}))
    if c.valid_to is not None:
        properties.append(("valid-to", {"valueDateTime": c.valid_to.isoformat()}))
    properties.append(("verified", {"valueBoolean": c.verified}))
    if c.retired:
        properties.append(("status", {"valueCode": "retired"}))
    for name, value in properties:
        out.append(
            {"name": "property", "part": [{"name": "code", "valueCode": name}, {"name": "value", **value}]}
        )
    return {"resourceType": "Parameters", "parameter": out}


def cs_validate(service: TerminologyService, inp: OperationInput) -> dict[str, Any]:
    """``CodeSystem/$validate-code``."""
    result = service.validate_code(
        inp.required("code"), system=inp.required("url"), display=inp.one("display"), on=_day(inp)
    )
    return _validation(result)


def vs_validate(service: TerminologyService, inp: OperationInput) -> dict[str, Any]:
    """``ValueSet/$validate-code``."""
    result = service.validate_code(
        inp.required("code"),
        valueset=inp.required("url"),
        system=inp.one("system"),
        display=inp.one("display"),
        on=_day(inp),
    )
    return _validation(result)


def subsumes(service: TerminologyService, inp: OperationInput) -> dict[str, Any]:
    """``CodeSystem/$subsumes``."""
    outcome = service.subsumes(inp.required("system"), inp.required("codeA"), inp.required("codeB"))
    return {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": outcome}]}


def expand(service: TerminologyService, inp: OperationInput) -> dict[str, Any]:
    """``ValueSet/$expand``: the value set with ``expansion`` (total, offset, contains)."""
    url = inp.required("url")
    offset = inp.integer("offset", 0, 0, 10**9)
    count = inp.integer("count", MAX_EXPAND, 0, MAX_EXPAND)
    text = inp.one("filter")
    page = service.expand(url, text=text, offset=offset, count=count)
    vs = page.valueset
    parameters: list[dict[str, Any]] = [
        {"name": "offset", "valueInteger": offset},
        {"name": "count", "valueInteger": count},
    ]
    if text:
        parameters.insert(0, {"name": "filter", "valueString": text})
    contains = []
    for m in page.members:
        entry: dict[str, Any] = {"system": m.system, "code": m.code}
        if m.display:
            entry["display"] = m.display
        if m.display_en:
            entry["designation"] = [{"language": "en", "value": m.display_en}]
        contains.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "ValueSet",
        "url": url,
        "name": vs.name,
        "status": "active",
        "expansion": {
            "timestamp": date.today().isoformat(),
            "total": page.total,
            "offset": offset,
            "parameter": parameters,
            "contains": contains,
        },
    }
    if vs.version:
        resource["version"] = vs.version
    return resource


def translate(service: TerminologyService, inp: OperationInput) -> dict[str, Any]:
    """``ConceptMap/$translate``: ``result``, then one ``match`` per mapping of the code."""
    system, code = inp.required("system"), inp.required("code")
    found = service.translate(system, code, url=inp.one("url"), target_system=inp.one("targetsystem"))
    usable = [t for t in found if t.target.equivalence not in ("unmatched", "disjoint")]
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": bool(usable)}]
    if not usable:
        out.append({"name": "message", "valueString": f"no mapping of {code!r} from {system}"})
    for t in found:
        concept = {"system": t.target.system, "code": t.target.code}
        if t.target.display:
            concept["display"] = t.target.display
        source = f"{t.map_url}|{t.map_version}" if t.map_version else t.map_url
        out.append(
            {
                "name": "match",
                "part": [
                    {"name": "equivalence", "valueCode": t.target.equivalence},
                    {"name": "concept", "valueCoding": concept},
                    {"name": "source", "valueUri": source},
                ],
            }
        )
    return {"resourceType": "Parameters", "parameter": out}


OPERATIONS: list[tuple[dict[str, Any], Handler]] = [
    (LOOKUP, lookup),
    (CS_VALIDATE, cs_validate),
    (SUBSUMES, subsumes),
    (EXPAND, expand),
    (VS_VALIDATE, vs_validate),
    (TRANSLATE, translate),
]


def _bind(
    service: TerminologyService, definition: dict[str, Any], handler: Handler
) -> Callable[..., FhirResponse]:
    code, accepted = str(definition["code"]), inputs(definition)

    def run(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
        try:
            body = handler(service, operation_input(req, code, accepted))
        except UnknownTerminology as exc:
            raise ResourceNotFound(str(exc)) from None
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return FhirResponse(200, dumps(body))

    return run


def register(extensions: Extensions, service: TerminologyService) -> None:
    """Add the terminology operations to the FHIR API."""
    for definition, handler in OPERATIONS:
        extensions.add_operation(
            OperationSpec(
                code=str(definition["code"]),
                resource_type=definition["resource"][0],
                type_level=True,
                instance_level=False,
                methods=("GET", "POST"),
                handler=_bind(service, definition, handler),
                definition=definition,
            )
        )
