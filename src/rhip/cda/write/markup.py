"""CDA R2 building blocks as strings: data types, entries and sections (POCD_MT000040 element order).

Everything stays inside the plain CDA R2 schema: the WS/T samples add elements of their own (``age``,
``township``, ``patientType``), which a core-schema validator rejects, so their content goes where the
core model has a place for it (an entry, ``precinct``) or into the narrative.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

LOINC = "2.16.840.1.113883.6.1"
DATA_ELEMENTS = "2.16.156.10011.2.2.1"  # WS 363 卫生信息数据元目录
ICD10 = "2.16.156.10011.2.3.3.11"
INTERPRETATION = "2.16.840.1.113883.5.83"  # HL7 ObservationInterpretation (H, L, N …)

# One translate call per string (faster than xml.sax.saxutils.escape, which replaces three times);
# attributes also escape tabs and line breaks, which attribute-value normalization would turn to spaces.
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)


def esc(value: object) -> str:
    """Escape character data."""
    return str(value).translate(_TEXT)


def q(value: object) -> str:
    """Escape a value for a double-quoted attribute."""
    return str(value).translate(_ATTR)


def num(value: object) -> str:
    """A number as HL7 writes it: no trailing ``.0`` on whole numbers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cd(
    tag: str,
    code: str | None,
    system: str | None = None,
    system_name: str | None = None,
    display: str | None = None,
    *,
    xsi_type: str | None = None,
    inner: str = "",
) -> str:
    """A coded element (CD/CE/CV); a missing code becomes nullFlavor OTH with the display kept."""
    parts = [f'<{tag} xsi:type="{xsi_type}"' if xsi_type else f"<{tag}"]
    if code:
        parts.append(f' code="{q(code)}"')
        if system:
            parts.append(f' codeSystem="{system}"')
    else:
        parts.append(' nullFlavor="OTH"')
    if system_name:
        parts.append(f' codeSystemName="{q(system_name)}"')
    if display:
        parts.append(f' displayName="{q(display)}"')
    parts.append(f">{inner}</{tag}>" if inner else "/>")
    return "".join(parts)


@lru_cache(maxsize=1024)
def de(code: str | None, display: str, qualifier: str | None = None) -> str:
    """An entry ``code`` naming a WS 363 data element; ``None`` when no element id is known for it."""
    inner = f'<qualifier><name displayName="{q(qualifier)}"/></qualifier>' if qualifier else ""
    if code is None:
        return cd("code", None, display=display, inner=inner)
    return cd("code", code, DATA_ELEMENTS, "卫生信息数据元目录", display, inner=inner)


@lru_cache(maxsize=1024)
def loinc(code: str, display: str) -> str:
    """An entry ``code`` in LOINC, for observations no known data element names."""
    return cd("code", code, LOINC, "LOINC", display)


def v_st(value: object) -> str:
    """A string value."""
    return f'<value xsi:type="ST">{esc(value)}</value>'


def v_cd(code: str | None, system: str | None, system_name: str | None, display: str | None) -> str:
    """A coded value."""
    return cd("value", code, system, system_name, display, xsi_type="CD")


def v_pq(value: object, unit: str | None) -> str:
    """A physical quantity; ``unit`` is UCUM (``1`` for a plain number)."""
    return f'<value xsi:type="PQ" value="{num(value)}" unit="{q(unit or "1")}"/>'


def v_ts(value: str) -> str:
    """A point in time (an HL7 TS string)."""
    return f'<value xsi:type="TS" value="{value}"/>'


def v_int(value: int) -> str:
    """An integer."""
    return f'<value xsi:type="INT" value="{value}"/>'


def v_bl(value: bool) -> str:
    """A boolean."""
    return f'<value xsi:type="BL" value="{"true" if value else "false"}"/>'


def time(tag: str, value: str) -> str:
    """A TS element, or nullFlavor UNK when the time is not known."""
    return f'<{tag} value="{value}"/>' if value else f'<{tag} nullFlavor="UNK"/>'


def interval(low: str, high: str = "", tag: str = "effectiveTime") -> str:
    """An IVL_TS with the bounds that are known."""
    inner = (f'<low value="{low}"/>' if low else "") + (f'<high value="{high}"/>' if high else "")
    return f"<{tag}>{inner}</{tag}>" if inner else ""


def ii(root: str, extension: str | None) -> str:
    """An instance identifier; no extension means the id is not known."""
    if not extension:
        return '<id nullFlavor="UNK"/>'
    return f'<id root="{root}" extension="{q(extension)}"/>'


def observation(
    code: str,
    value: str = "",
    *,
    effective: str = "",
    interpretation: str = "",
    relationships: Iterable[str] = (),
    reference_range: str = "",
    mood: str = "EVN",
) -> str:
    """An observation; the keyword parts land in the order the schema asks."""
    return (
        f'<observation classCode="OBS" moodCode="{mood}">{code}'
        f"{effective}{value}{interpretation}{''.join(relationships)}{reference_range}</observation>"
    )


def component_of(statement: str, type_code: str = "COMP") -> str:
    """An entryRelationship holding a clinical statement."""
    return f'<entryRelationship typeCode="{type_code}">{statement}</entryRelationship>'


def organizer(
    components: Iterable[str], *, code: str = "", effective: str = "", class_code: str = "CLUSTER"
) -> str:
    """An organizer of clinical statements: CLUSTER (the samples group diagnosis name and code so) or BATTERY."""
    inner = "".join(f"<component>{c}</component>" for c in components)
    return (
        f'<organizer classCode="{class_code}" moodCode="EVN">{code}<statusCode code="completed"/>{effective}'
        f"{inner}</organizer>"
    )


def entry(statement: str) -> str:
    """A section entry."""
    return f"<entry>{statement}</entry>"


def obs_entry(code: str | None, display: str, value: str, **kwargs: str) -> str:
    """An entry holding one observation of a data element."""
    return entry(observation(de(code, display), value, **kwargs))


def narrative(lines: Iterable[str]) -> str:
    """The human-readable block of a section: one list item per line."""
    items = "".join(f"<item>{esc(line)}</item>" for line in lines if line)
    return f"<text><list>{items}</list></text>" if items else "<text/>"


def section(code: str | None, display: str, title: str, lines: Iterable[str], entries: Iterable[str]) -> str:
    """A body section, coded in LOINC when ``code`` is given (sections the samples leave uncoded are titled)."""
    coded = cd("code", code, LOINC, "LOINC", display) if code else ""
    return (
        f"<component><section>{coded}<title>{esc(title)}</title>{narrative(lines)}"
        f"{''.join(entries)}</section></component>"
    )
