"""OBX-6 units as FHIR Quantity units: UCUM codes as sent, or recognised from how hospitals write them.

A unit with coding system UCUM is taken as it is. A bare unit (no coding system, or ISO+, ANSI, L …) is
looked up among the units laboratory systems write in practice (``mg/dl``, ``mmHg``, ``10^9/L``,
``×10^9/L``, ``giga.l-1``, ``次/分``, ``℃``) and given its UCUM code when it has an unambiguous one; anything
else stays a unit text without a code, so that nothing is guessed.
"""

from __future__ import annotations

UCUM = "http://unitsofmeasure.org"

# UCUM codes laboratory and vital-sign results use, taken as they are when sent without a coding system
_UCUM_CODES = frozenset(
    (
        "%", "1", "g", "mg", "ug", "ng", "pg", "kg", "L", "mL", "uL", "fL", "s", "min", "h", "d", "wk", "mo",
        "a", "m", "cm", "mm", "Cel", "[degF]", "mm[Hg]", "cm[H2O]", "[pH]", "g/L", "g/dL", "mg/dL", "mg/L",
        "ug/L", "ug/dL", "ug/mL", "ng/mL", "ng/L", "ng/dL", "pg/mL", "mol/L", "mmol/L", "umol/L", "nmol/L",
        "pmol/L", "U/L", "U/mL", "mU/L", "[IU]/L", "[IU]/mL", "m[IU]/L", "m[IU]/mL", "u[IU]/mL", "meq/L",
        "mosm/kg", "10*9/L", "10*12/L", "10*6/uL", "10*3/uL", "/uL", "/L", "/min", "/h", "{cells}/uL",
        "pg/{cell}", "mm/h", "kg/m2", "m2", "mL/min", "mL/min/{1.73_m2}", "g/(24.h)", "mg/(24.h)", "{ratio}",
        "{index}", "{titer}", "[arb'U]/mL", "km", "mmol/mol", "/[HPF]", "/[LPF]", "[ppm]", "dB", "%{saturation}",
    )
)  # fmt: skip

# how units are written when they are not UCUM (lower case, spaces removed) -> UCUM code
_ALIASES = {
    "mmhg": "mm[Hg]",
    "毫米汞柱": "mm[Hg]",
    "cmh2o": "cm[H2O]",
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "ug/dl": "ug/dL",
    "ng/ml": "ng/mL",
    "pg/ml": "pg/mL",
    "ug/ml": "ug/mL",
    "mmol/l": "mmol/L",
    "umol/l": "umol/L",
    "μmol/l": "umol/L",
    "µmol/l": "umol/L",
    "nmol/l": "nmol/L",
    "pmol/l": "pmol/L",
    "g/l": "g/L",
    "mg/l": "mg/L",
    "u/l": "U/L",
    "iu/l": "[IU]/L",
    "iu/ml": "[IU]/mL",
    "miu/l": "m[IU]/L",
    "miu/ml": "m[IU]/mL",
    "uiu/ml": "u[IU]/mL",
    "μiu/ml": "u[IU]/mL",
    "meq/l": "meq/L",
    "mmol/mol": "mmol/mol",
    "fl": "fL",
    "ml": "mL",
    "l": "L",
    "sec": "s",
    "mm/hr": "mm/h",
    "kg/m^2": "kg/m2",
    "kg/m²": "kg/m2",
    "℃": "Cel",
    "°c": "Cel",
    "degc": "Cel",
    "bpm": "/min",
    "beats/min": "/min",
    "/min": "/min",
    "次/分": "/min",
    "次/min": "/min",
    "岁": "a",
    "g/24h": "g/(24.h)",
    "mg/24h": "mg/(24.h)",
    "giga.l-1": "10*9/L",
    "tera.l-1": "10*12/L",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/1.73m^2": "mL/min/{1.73_m2}",
}
for _exp, _code in (("9", "10*9/L"), ("12", "10*12/L")):
    for _form in ("10^{e}/l", "×10^{e}/l", "x10^{e}/l", "*10^{e}/l", "10e{e}/l", "10**{e}/l", "10*{e}/l"):
        _ALIASES[_form.format(e=_exp)] = _code


def ucum_code(unit: str) -> str | None:
    """The UCUM code of a unit as written without a coding system; None when it has no clear one."""
    text = unit.strip()
    if not text:
        return None
    if text in _UCUM_CODES:
        return text
    return _ALIASES.get(text.replace(" ", "").lower())


def quantity_unit(identifier: str, text: str, system: str) -> dict[str, str]:
    """The ``unit``/``system``/``code`` of a Quantity from OBX-6 (CWE-1 identifier, CWE-2 text, CWE-3)."""
    if not identifier and not text:
        return {}
    written = identifier or text
    code = identifier if identifier and system.strip().upper() == "UCUM" else ucum_code(written)
    out = {"unit": text or written}
    if code is None and text and identifier:
        code = ucum_code(text)
    if code:
        out["system"], out["code"] = UCUM, code
    return out
