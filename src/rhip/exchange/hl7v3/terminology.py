"""术语注册/更新/查询: PRVS_IN000001UV01, PRVS_IN000002UV01, PRVS_IN000003UV01 → PRVS_IN000004UV01.

Public sources describe these messages thinly; the layout here follows the hospital-platform samples
(LangZhongGit ``H0501Rt.xml`` … ``H0503Rt.xml``) and, where they are silent, the other registration services.

Register and update: ``controlActProcess/subject/registrationRequest/subject1`` (one or more), each holding::

    <valueSet>
      <id root="(optional OID)" extension="sexDictionary"/>    the value set's id (required)
      <desc value="性别代码表"/>                                 its title
      <statusCode code="1"/>                                    1/active, 0/inactive/retired
      <version code="1.0"><displayName value="版本1"/></version>
      <valueSetItems>                                           0..*
        <code code="F"><displayName value="女性"/></code>
        <statusCode code="1"/>
      </valueSetItems>
    </valueSet>

Each value set is a FHIR CodeSystem, one resource per (url, version): ``url`` is ``urn:oid:<root>`` when the
id has an OID root, else ``urn:rhip:cs:local:<institution>:<id>`` (the sender device id stands in for an
institution the message does not name), ``identifier`` ``urn:rhip:v3:value-set|<id>``. A register states
the whole value set (``content: complete``); an update changes, adds or retires the items it lists in the
version it names (or the latest), and when that version is new it starts from the latest one's concepts;
an update of a value set never registered keeps only what it lists (``content: fragment``). A retired item
keeps its code with property ``status`` = ``retired``.

Query: ``controlActProcess/queryByParameter/valueSet`` with ``id``, optional ``version`` and optional
``valueSetItems/code`` filters; the answer holds the value set in the same layout under ``registrationEvent``.
"""

from __future__ import annotations

import re
from typing import Any

from rhip.exchange.hl7v3.ack import add_query_ack, query_id_of
from rhip.exchange.hl7v3.context import Accepted, Answered, Context, Inbound, meta
from rhip.exchange.hl7v3.datatypes import OID
from rhip.exchange.hl7v3.entries import registration
from rhip.exchange.hl7v3.errors import MissingElement
from rhip.exchange.hl7v3.fhir import criteria
from rhip.exchange.hl7v3.person_query import query_element
from rhip.exchange.hl7v3.xmlread import (
    II,
    Element,
    attr,
    child,
    children,
    display_name,
    find_all,
    ids,
    path_of,
    value,
)
from rhip.exchange.hl7v3.xmlwrite import add, detached

ANSWER = "PRVS_IN000004UV01"
VALUE_SET_ID = "urn:rhip:v3:value-set"
STATUS_PROPERTY = {"code": "status", "uri": "http://hl7.org/fhir/concept-properties#status", "type": "code"}
_RETIRED = ("0", "inactive", "retired", "i", "obsolete", "terminated", "false")


def _retired(code: str) -> bool:
    return code.strip().lower() in _RETIRED


def _value_set_id(value_set: Element) -> II:
    found = ids(child(value_set, "id"))
    if not found or not (found[0].extension or found[0].root):
        where = f"{path_of(value_set)}/id"
        raise MissingElement(f"{where} (the value set's id, its extension) is required", location=where)
    return found[0]


def url_of(ctx: Context, inbound: Inbound, vs_id: II) -> str:
    """The CodeSystem url of a value set id (see the module docstring)."""
    if vs_id.root and OID.match(vs_id.root):
        return f"urn:oid:{vs_id.root}"
    owner = ctx.institution(inbound, required=False) or inbound.header.sender or "unknown"
    return f"urn:rhip:cs:local:{owner}:{vs_id.extension or vs_id.root}"


def _items(value_set: Element) -> list[dict[str, Any]]:
    concepts = []
    for item in children(value_set, "valueSetItems"):
        code_element = child(item, "code")
        code = attr(code_element, "code")
        if not code:
            where = f"{path_of(item)}/code"
            raise MissingElement(f"{where} needs a code", location=where)
        concept: dict[str, Any] = {"code": code}
        shown = display_name(code_element) if code_element is not None else ""
        if shown:
            concept["display"] = shown
        if _retired(attr(child(item, "statusCode"), "code")):
            concept["property"] = [{"code": "status", "valueCode": "retired"}]
        concepts.append(concept)
    return concepts


def _merge(base: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_code = {str(c["code"]): c for c in base}
    for change in changes:
        by_code[str(change["code"])] = {**by_code.get(str(change["code"]), {}), **change}
        if "property" not in change:
            by_code[str(change["code"])].pop("property", None)
    return list(by_code.values())


def _latest(ctx: Context, url: str) -> dict[str, Any] | None:
    found = ctx.fhir.search("CodeSystem", [("url", url)], count=100)
    return max(found, key=lambda r: str((r.get("meta") or {}).get("lastUpdated", ""))) if found else None


def _one(ctx: Context, url: str, version: str) -> dict[str, Any] | None:
    if not version:
        return _latest(ctx, url)
    found = ctx.fhir.search("CodeSystem", [("url", url), ("version", version)], count=2)
    return found[0] if found else None


def _safe_name(text: str) -> str | None:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name[:1].upper() + name[1:] if name and name[0].isalpha() else None


def _code_system(
    ctx: Context, inbound: Inbound, value_set: Element, update: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The CodeSystem of one ``valueSet`` and its transaction request."""
    vs_id = _value_set_id(value_set)
    url = url_of(ctx, inbound, vs_id)
    version = attr(child(value_set, "version"), "code")
    concepts = _items(value_set)
    content = "complete" if concepts else "not-present"
    request: dict[str, Any] = {
        "method": "PUT",
        "url": f"CodeSystem?{criteria(url=url, version=version) if version else criteria(url=url)}",
    }
    existing = _one(ctx, url, version) if update else None
    if update:
        base = existing or _latest(ctx, url)
        if base is not None:
            concepts = _merge(list(base.get("concept", ())), concepts)
            content = str(base.get("content") or "complete")
            version = version or str(base.get("version") or "")
        else:
            content = "fragment"
    if existing is not None:
        request = {"method": "PUT", "url": f"CodeSystem/{existing['id']}"}
        if (existing.get("meta") or {}).get("versionId"):
            request["ifMatch"] = f'W/"{existing["meta"]["versionId"]}"'
    institution = ctx.institution(inbound, required=False) or inbound.header.sender or "unknown"
    title = value(child(value_set, "desc"))
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "meta": meta(ctx, institution),
        "url": url,
        "identifier": [{"system": VALUE_SET_ID, "value": vs_id.extension or vs_id.root}],
        "status": "retired" if _retired(attr(child(value_set, "statusCode"), "code")) else "active",
        "content": content,
    }
    if existing is not None:
        resource["id"] = existing["id"]
    if version:
        resource["version"] = version
    name = _safe_name(vs_id.extension or "")
    if name:
        resource["name"] = name
    if title:
        resource["title"] = title
    if concepts:
        resource["count"] = len(concepts)
        resource["property"] = [STATUS_PROPERTY]
        resource["concept"] = concepts
    return resource, request


def _record(ctx: Context, inbound: Inbound, update: bool) -> Accepted:
    reg = registration(inbound.act)
    value_sets = find_all(reg, "subject1/valueSet") if reg is not None else []
    if not value_sets:
        where = f"{path_of(inbound.act)}/subject/registrationRequest/subject1/valueSet"
        raise MissingElement(f"{where} is required", location=where)
    entries = []
    for value_set in value_sets:
        resource, request = _code_system(ctx, inbound, value_set, update)
        entries.append({"fullUrl": ctx.uuid_url(), "resource": resource, "request": request})
    ctx.fhir.transaction(entries)
    return Accepted()


def register_terminology(ctx: Context, inbound: Inbound) -> Accepted:
    """Register value sets (each replaces the version it names)."""
    return _record(ctx, inbound, update=False)


def update_terminology(ctx: Context, inbound: Inbound) -> Accepted:
    """Change, add or retire items of registered value sets."""
    return _record(ctx, inbound, update=True)


def query_terminology(ctx: Context, inbound: Inbound) -> Answered:
    """Answer a value-set query: the value set (a version, or the latest), optionally only some items."""
    query = query_element(inbound.act)
    value_set = child(query, "valueSet")
    if value_set is None:
        where = f"{path_of(query)}/valueSet"
        raise MissingElement(f"{where} is required", location=where)
    vs_id = _value_set_id(value_set)
    version = attr(child(value_set, "version"), "code")
    found = _one(ctx, url_of(ctx, inbound, vs_id), version)
    if found is None and not (vs_id.root and OID.match(vs_id.root)):
        # Another sender's value set of that id (the asking system did not register it itself).
        params = [("identifier", f"{VALUE_SET_ID}|{vs_id.extension}")]
        if version:
            params.append(("version", version))
        matches = ctx.fhir.search("CodeSystem", params, count=100)
        found = (
            max(matches, key=lambda r: str((r.get("meta") or {}).get("lastUpdated", ""))) if matches else None
        )
    wanted = {attr(e, "code") for e in find_all(value_set, "valueSetItems/code") if attr(e, "code")}
    act = detached("controlActProcess", classCode="CACT", moodCode="EVN")
    if found is not None:
        event = add(
            add(act, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG", moodCode="EVN"
        )
        add(event, "statusCode", code="active")
        add_value_set(add(event, "subject1", typeCode="SBJ"), found, vs_id, wanted)
    add_query_ack(act, query_id_of(query), 1 if found is not None else 0, 1 if found is not None else 0)
    return Answered(ANSWER, act)


def add_value_set(parent: Element, code_system: dict[str, Any], vs_id: II, wanted: set[str]) -> Element:
    """A ``valueSet`` in the register layout from a CodeSystem (only the ``wanted`` codes when given)."""
    element = add(parent, "valueSet")
    add(element, "id", root=vs_id.root or None, extension=vs_id.extension or None)
    if code_system.get("title"):
        add(element, "desc", value=str(code_system["title"]))
    add(element, "statusCode", code="0" if code_system.get("status") == "retired" else "1")
    if code_system.get("version"):
        add(element, "version", code=str(code_system["version"]))
    for concept in code_system.get("concept", ()):
        if wanted and concept.get("code") not in wanted:
            continue
        item = add(element, "valueSetItems")
        code = add(item, "code", code=str(concept["code"]))
        if concept.get("display"):
            add(code, "displayName", value=str(concept["display"]))
        retired = any(
            p.get("code") == "status" and p.get("valueCode") == "retired" for p in concept.get("property", ())
        )
        add(item, "statusCode", code="0" if retired else "1")
    return element
