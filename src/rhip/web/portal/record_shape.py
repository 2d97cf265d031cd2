"""Shaping FHIR resources into the rows a record page shows (pure functions: no reads, no requests)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
ID_NUMBER_SYSTEM = "urn:oid:2.16.156.10011.1.3"  # 居民身份证号
HEALTH_CARD_SYSTEM = "urn:oid:2.16.156.10011.1.19"  # 居民健康卡号
LOINC = "http://loinc.org"
BP_PANEL, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"
# Medicines prescribed within this many days count as current.
CURRENT_MEDICATION_DAYS = 120
# Chronic-disease programmes (基本公卫): follow-up service code -> (programme, days between follow-ups).
FOLLOW_UP_SERVICES = {"htn-followup": ("htn", 90), "dm-followup": ("dm", 90)}


def local_time(value: object, *, with_time: bool = True) -> str:
    """A FHIR date or dateTime shown in Shanghai time (``YYYY-MM-DD HH:MM``); '' when absent."""
    if not value:
        return ""
    text = str(value)
    if len(text) <= 10:
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text[:16].replace("T", " ")
    if moment.tzinfo is not None:
        moment = moment.astimezone(SHANGHAI)
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def day_of(value: object) -> date | None:
    """The Shanghai calendar day of a FHIR date or dateTime."""
    text = local_time(value, with_time=False)
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def ref_id(reference: object) -> str:
    """The id of a relative reference (``{"reference": "Type/id"}``), or ''."""
    if not isinstance(reference, Mapping):
        return ""
    return str(reference.get("reference") or "").rstrip("/").rpartition("/")[2]


def concept_text(concept: object) -> str:
    """A CodeableConcept's words: its text, else the first coding's display or code."""
    if not isinstance(concept, Mapping):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def code_of(concept: object, system: str | None = None) -> str:
    """The code of a CodeableConcept's first coding (in ``system`` when given), or ''."""
    if not isinstance(concept, Mapping):
        return ""
    for coding in concept.get("coding") or ():
        if system is None or coding.get("system") == system:
            return str(coding.get("code") or "")
    return ""


def quantity(value: object) -> tuple[float | None, str]:
    """A Quantity's number and unit."""
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), int | float):
        return None, ""
    return float(value["value"]), str(value.get("unit") or value.get("code") or "")


def number_text(value: float | None) -> str:
    """A number without a needless ``.0``."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# -- the summary ------------------------------------------------------------------------------------------


def shape_summary(
    conditions: Iterable[Mapping[str, Any]],
    allergies: Iterable[Mapping[str, Any]],
    medications: Iterable[Mapping[str, Any]],
    immunizations: Iterable[Mapping[str, Any]],
    follow_ups: Iterable[Mapping[str, Any]],
    today: date | None = None,
) -> dict[str, Any]:
    """The summary's lists: problems, allergies, current medications, immunizations, follow-up status."""
    today = today or datetime.now(SHANGHAI).date()
    problems: dict[str, dict[str, Any]] = {}
    for c in conditions:
        if code_of(c.get("clinicalStatus")) not in ("active", "recurrence", "relapse"):
            continue
        key = code_of(c.get("code")) or concept_text(c.get("code"))
        if key in problems:
            continue
        problems[key] = {
            "name": concept_text(c.get("code")),
            "code": code_of(c.get("code")),
            "onset": local_time(c.get("onsetDateTime"), with_time=False),
            "recorded": local_time(c.get("recordedDate"), with_time=False),
        }
    allergy_rows = [
        {
            "name": concept_text(a.get("code")),
            "category": ", ".join(a.get("category") or ()),
            "recorded": local_time(a.get("recordedDate"), with_time=False),
        }
        for a in allergies
        if code_of(a.get("clinicalStatus")) in ("active", "")
    ]
    current: dict[str, dict[str, Any]] = {}
    since = today - timedelta(days=CURRENT_MEDICATION_DAYS)
    for m in medications:
        name = concept_text(m.get("medicationCodeableConcept"))
        day = day_of(m.get("authoredOn"))
        if not name or name in current or day is None or day < since:
            continue
        dosage = [str(d.get("text", "")) for d in m.get("dosageInstruction") or () if d.get("text")]
        current[name] = {"name": name, "dosage": "; ".join(dosage), "authored": day.isoformat()}
    vaccines = [
        {
            "name": concept_text(i.get("vaccineCode")),
            "dose": next((p.get("doseNumberPositiveInt") for p in i.get("protocolApplied") or ()), None),
            "date": local_time(i.get("occurrenceDateTime"), with_time=False),
        }
        for i in immunizations
    ]
    return {
        "problems": list(problems.values()),
        "allergies": allergy_rows,
        "medications": list(current.values()),
        "immunizations": vaccines,
        "follow_ups": shape_follow_ups(follow_ups, today),
    }


def shape_follow_ups(encounters: Iterable[Mapping[str, Any]], today: date) -> list[dict[str, Any]]:
    """Per chronic-disease programme: visits in the list, the last one, when the next is due, overdue?"""
    out: dict[str, dict[str, Any]] = {}
    for e in encounters:
        service = next((code_of(t) for t in e.get("type") or () if code_of(t) in FOLLOW_UP_SERVICES), "")
        if not service:
            continue
        programme, _gap = FOLLOW_UP_SERVICES[service]
        day = day_of((e.get("period") or {}).get("start"))
        row = out.setdefault(programme, {"programme": programme, "visits": 0, "last": None, "gap": _gap})
        row["visits"] += 1
        if day is not None and (row["last"] is None or day > row["last"]):
            row["last"] = day
            row["institution"] = str((e.get("serviceProvider") or {}).get("display") or "")
    rows = []
    for row in out.values():
        last = row["last"]
        due = last + timedelta(days=int(row["gap"])) if last else None
        rows.append(
            {
                **row,
                "last": last.isoformat() if last else "",
                "due": due.isoformat() if due else "",
                "overdue": bool(due and due < today),
            }
        )
    return sorted(rows, key=lambda r: str(r["programme"]))


# -- vitals, encounters, labs, documents ------------------------------------------------------------------


def shape_vitals(observations: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The latest value of each vital sign (newest first in) and the blood-pressure series, oldest first."""
    latest: dict[str, dict[str, Any]] = {}
    pressure: list[dict[str, Any]] = []
    for o in observations:
        code = code_of(o.get("code"), LOINC) or code_of(o.get("code"))
        when = local_time(o.get("effectiveDateTime"))
        if code == BP_PANEL:
            parts = {
                code_of(c.get("code")): quantity(c.get("valueQuantity"))[0] for c in o.get("component") or ()
            }
            sys_, dia = parts.get(SYSTOLIC), parts.get(DIASTOLIC)
            if sys_ is None or dia is None:
                continue
            point = {"when": when, "systolic": sys_, "diastolic": dia}
            if point in pressure:  # the same reading from a visit's message and its document
                continue
            pressure.append(point)
            value, unit = f"{number_text(sys_)}/{number_text(dia)}", "mmHg"
        else:
            amount, unit = quantity(o.get("valueQuantity"))
            if amount is None:
                continue
            value = number_text(amount)
        if code not in latest:
            latest[code] = {"code": code, "name": concept_text(o.get("code")), "value": value, "unit": unit,
                            "when": when}  # fmt: skip
    pressure.sort(key=lambda p: str(p["when"]))
    return {"latest": list(latest.values()), "pressure": pressure}


def shape_encounter(e: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the timeline."""
    period = e.get("period") or {}
    klass = e.get("class") or {}
    return {
        "id": str(e.get("id", "")),
        "start": local_time(period.get("start")),
        "end": local_time(period.get("end")),
        "class": str(klass.get("display") or klass.get("code") or ""),
        "class_code": str(klass.get("code") or ""),
        "type": ", ".join(concept_text(t) for t in e.get("type") or ()),
        "reason": ", ".join(concept_text(r) for r in e.get("reasonCode") or ()),
        "institution": str(
            (e.get("serviceProvider") or {}).get("display") or ref_id(e.get("serviceProvider"))
        ),
        "doctor": next(
            (str((p.get("individual") or {}).get("display", "")) for p in e.get("participant") or ()), ""
        ),
        "location": next(
            (str((loc.get("location") or {}).get("display", "")) for loc in e.get("location") or ()), ""
        ),
        "patient": ref_id(e.get("subject")),
    }


def shape_labs(observations: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lab results by test: name, unit, range, the latest value and flag, and every value oldest first."""
    tests: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str, float]] = set()
    for o in observations:
        amount, unit = quantity(o.get("valueQuantity"))
        if amount is None:
            continue
        code = code_of(o.get("code"), LOINC) or code_of(o.get("code"))
        test = tests.get(code)
        flag = next((code_of(i) for i in o.get("interpretation") or ()), "")
        if test is None:
            ranges = o.get("referenceRange") or [{}]
            low, high = quantity(ranges[0].get("low"))[0], quantity(ranges[0].get("high"))[0]
            test = tests[code] = {
                "code": code,
                "name": concept_text(o.get("code")),
                "unit": unit,
                "low": low,
                "high": high,
                "range": f"{number_text(low)}–{number_text(high)}"
                if low is not None and high is not None
                else "",
                "latest": number_text(amount),
                "flag": flag,
                "when": local_time(o.get("effectiveDateTime")),
                "series": [],
            }
        when = local_time(o.get("effectiveDateTime"))
        if (code, when, amount) in seen:  # the same result from a visit's message and its document
            continue
        seen.add((code, when, amount))
        test["series"].append({"when": when, "value": amount, "flag": flag})
    for test in tests.values():
        test["series"].sort(key=lambda p: str(p["when"]))
    return sorted(tests.values(), key=lambda t: str(t["name"]))


def shape_document(d: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the documents list: its type, date, author institution and content's Binary id."""
    attachment = next(((c.get("attachment") or {}) for c in d.get("content") or ()), {})
    authors = d.get("author") or ()
    institution = next(
        (
            str(a.get("display", ""))
            for a in authors
            if str(a.get("reference", "")).startswith("Organization/")
        ),
        "",
    )
    url = str(attachment.get("url") or "")
    return {
        "id": str(d.get("id", "")),
        "title": concept_text(d.get("type")) or str(attachment.get("title") or ""),
        "code": code_of(d.get("type")),
        "date": local_time(d.get("date")),
        "institution": institution,
        "content_type": str(attachment.get("contentType") or ""),
        "binary": url.rpartition("Binary/")[2] if "Binary/" in url else "",
        "patient": ref_id(d.get("subject")),
    }


def merge_encounters(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline without repeats: one visit recorded twice (its message and its document's extraction:
    same start, institution and class) is one row, its blanks filled from the other."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row["start"]), str(row["institution"]), str(row["class_code"]))
        kept = out.get(key)
        if kept is None:
            out[key] = dict(row)
            continue
        for name, value in row.items():
            if value and not kept.get(name):
                kept[name] = value
    return list(out.values())
