"""个人信息查询: PRPA_IN201305UV02 answered by PRPA_IN201306UV02.

Parameters (``controlActProcess/queryByParameter/parameterList``, layout of LangZhongGit ``H0204Rt.xml``):
``id`` (a local patient id, root 2.16.156.10011.2.5.1.4), ``livingSubjectId/value`` (any identifier: 身份证
2.16.156.10011.1.3, 健康卡 .1.19, 健康档案编号 .1.2, local ids …), ``livingSubjectName/value``,
``livingSubjectBirthTime/value``, ``livingSubjectAdministrativeGender/value``, ``patientTelecom/value``.
A query needs an identifier, or a name with a birth date. ``initialQuantity`` caps the answer (at most 100).

Each source Patient found is answered as a ``registrationEvent`` subject in the register layout; when the
master patient index is wired (:class:`~rhip.exchange.hl7v3.persons.PersonLinks`) the identifiers of the
same person's other records are added as ``asOtherIDs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v3.ack import add_query_ack, query_id_of
from rhip.exchange.hl7v3.context import Answered, Context, Inbound, first
from rhip.exchange.hl7v3.datatypes import (
    DOMAIN_ROOT,
    MRN_PREFIX,
    birth_date,
    identifier_system,
    name_text,
    telecoms,
)
from rhip.exchange.hl7v3.errors import NoQueryParameters
from rhip.exchange.hl7v3.person_map import GENDER_CODES, add_patient
from rhip.exchange.hl7v3.xmlread import II, Element, attr, child, children, find_all, ids, path_of
from rhip.exchange.hl7v3.xmlwrite import add, detached

ANSWER = "PRPA_IN201306UV02"
MAX_RESULTS = 100


@dataclass
class PersonQuery:
    """The parameters of a person query."""

    identifiers: list[tuple[str | None, str]] = field(
        default_factory=list
    )  # (system or None: any mrn, value)
    name: str = ""
    birth_date: str = ""
    gender: str = ""
    phone: str = ""
    limit: int = MAX_RESULTS


def query_element(act: Element) -> Element:
    """``queryByParameter`` (or the ``queryByParameterPayload`` some senders write)."""
    found = first(act, "queryByParameter", "queryByParameterPayload")
    if found is None:
        where = f"{path_of(act)}/queryByParameter"
        raise NoQueryParameters(f"{where} is required", location=where)
    return found


def limit_of(query: Element) -> int:
    """``initialQuantity/@value`` within 1..100 (100 when absent or unreadable)."""
    text = attr(child(query, "initialQuantity"), "value")
    return min(int(text), MAX_RESULTS) if text.isdigit() and int(text) > 0 else MAX_RESULTS


def _param_values(params: Element, name: str) -> list[Element]:
    return find_all(params, f"{name}/value")


def read_query(ctx: Context, inbound: Inbound, query: Element, zone: ZoneInfo) -> PersonQuery:
    """The parameters of a PRPA_IN201305UV02."""
    params = child(query, "parameterList")
    params = params if params is not None else query
    found = PersonQuery(limit=limit_of(query))
    id_sets: list[list[II]] = [ids(e) for e in children(params, "id")]
    id_sets += [ids(e) for e in _param_values(params, "livingSubjectId")]
    for id_set in id_sets:
        domain = next((i.extension for i in id_set if i.root == DOMAIN_ROOT), "")
        institution = domain or ctx.institution(inbound, required=False)
        for ii in id_set:
            if ii.root == DOMAIN_ROOT or not ii.extension:
                continue
            system = identifier_system(ii, institution)
            found.identifiers.append((system, ii.extension))
    name_values = _param_values(params, "livingSubjectName")
    found.name = name_text(name_values[0]) if name_values else ""
    births = _param_values(params, "livingSubjectBirthTime")
    if births:
        born = birth_date(births[0], zone) or birth_date(child(births[0], "low"), zone)
        found.birth_date = born or ""
    genders = _param_values(params, "livingSubjectAdministrativeGender")
    found.gender = GENDER_CODES.get(attr(genders[0], "code"), "") if genders else ""
    phones = [p for e in _param_values(params, "patientTelecom") for p in telecoms(e)]
    found.phone = str(phones[0]["value"]) if phones else ""
    if not found.identifiers and not (found.name and found.birth_date):
        where = path_of(params)
        raise NoQueryParameters(
            f"{where}: a person query needs livingSubjectId (or id), or livingSubjectName with "
            "livingSubjectBirthTime",
            location=where,
        )
    return found


def _name_matches(patient: dict[str, Any], wanted: str) -> bool:
    for name in patient.get("name", ()):
        text = name.get("text") or "".join([name.get("family", ""), *name.get("given", [])])
        if text.replace(" ", "") == wanted.replace(" ", ""):
            return True
    return False


def _fits(patient: dict[str, Any], q: PersonQuery) -> bool:
    if q.name and not _name_matches(patient, q.name):
        return False
    if q.birth_date and patient.get("birthDate") != q.birth_date:
        return False
    if q.gender and patient.get("gender") != q.gender:
        return False
    return not q.phone or any(t.get("value") == q.phone for t in patient.get("telecom", ()))


def find_patients(ctx: Context, q: PersonQuery) -> list[dict[str, Any]]:
    """The source Patients a person query matches, in the order found."""
    found: dict[str, dict[str, Any]] = {}
    for system, value in q.identifiers:
        if system is None:
            # A local id whose institution is unknown: any institution's local ids.
            matches = [
                p
                for p in ctx.fhir.search("Patient", [("identifier", value)], count=MAX_RESULTS)
                if any(
                    str(i.get("system", "")).startswith(MRN_PREFIX) and i.get("value") == value
                    for i in p.get("identifier", ())
                )
            ]
        else:
            matches = ctx.fhir.search("Patient", [("identifier", f"{system}|{value}")], count=MAX_RESULTS)
        for patient in matches:
            found.setdefault(str(patient["id"]), patient)
    if not q.identifiers:
        params = [("name", q.name), ("birthdate", q.birth_date)]
        if q.gender:
            params.append(("gender", q.gender))
        for patient in ctx.fhir.search("Patient", params, count=MAX_RESULTS):
            found.setdefault(str(patient["id"]), patient)
    return [p for p in found.values() if _fits(p, q)]


def query_persons(ctx: Context, inbound: Inbound) -> Answered:
    """Answer a person query with the matching source records and the person's other identifiers."""
    query = query_element(inbound.act)
    q = read_query(ctx, inbound, query, ctx.zone)
    patients = find_patients(ctx, q)
    act = detached("controlActProcess", classCode="CACT", moodCode="EVN")
    for patient in patients[: q.limit]:
        extra: list[tuple[str, str]] = []
        if ctx.persons is not None:
            person = ctx.persons.person_of(str(patient["id"]))
            if person is not None:
                extra = [ident for ident in person.identifiers if ident[1]]
        event = add(
            add(act, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG", moodCode="EVN"
        )
        add(event, "statusCode", code="active")
        add_patient(add(event, "subject1", typeCode="SBJ"), patient, extra)
    add_query_ack(act, query_id_of(query), min(len(patients), q.limit), len(patients))
    return Answered(ANSWER, act)
