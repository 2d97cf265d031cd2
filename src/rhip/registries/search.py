"""The registries' own search parameters: pinyin of a name and division of an address.

They are search parameters of the store's index like the official ones (rhip.fhir.search.params.CustomParam,
added by bootstrap to the registry every door searches with), not parameters resolved to ids beside the
store: a search by pinyin or division combines with any other parameter, pages and counts as any search.

- ``division`` is plain FHIRPath over the address's division extension (urn:rhip:ext:division, a GB/T 2260
  code or a township/village code under it); a string search, so ``division=5107`` finds every institution
  of 绵阳市 and ``division=510703`` those of 涪城区 (the default string match is "starts with").
- ``pinyin`` cannot be computed in FHIRPath: an index hook (``derive``) turns each name the expression
  yields into its readings (rhip.registries.pinyin) when the resource is indexed. Nothing is added to the
  resource, so every door's writes (FHIR REST, HL7 v3, CSV, the portal) are indexed alike, and a change of
  the pinyin rules needs only a re-index, not a rewrite of the stored resources.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rhip.fhir.search.params import CustomParam
from rhip.registries.identifiers import DIVISION_EXTENSION
from rhip.registries.pinyin import readings

CANONICAL = "https://rhip.dev/fhir/SearchParameter"
PLACE_NAMES = {
    "Organization": "Organization.name | Organization.alias",
    "Location": "Location.name | Location.alias",
    "HealthcareService": "HealthcareService.name",
}


def place_readings(value: Any, typ: str) -> Iterable[str]:
    """Readings of an institution's, a location's or a service's name, from the start of each syllable."""
    return readings(value, from_every_syllable=True) if isinstance(value, str) else ()


def person_readings(value: Any, typ: str) -> Iterable[str]:
    """Readings of a practitioner's name (a HumanName: its text, else family then given), whole."""
    if not isinstance(value, dict):
        return ()
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        parts = [value.get("family"), *(value.get("given") or ())]
        text = "".join(p for p in parts if isinstance(p, str))
    return readings(text, from_every_syllable=False)


def registry_params() -> list[CustomParam]:
    """The search parameters the registries add (pinyin on four types, division on two)."""
    params = [
        CustomParam(
            rtype,
            "pinyin",
            "string",
            expression,
            f"{CANONICAL}/{rtype}-pinyin",
            derive=place_readings,
            derive_name="rhipPinyinFromEachSyllable",
        )
        for rtype, expression in PLACE_NAMES.items()
    ]
    params.append(
        CustomParam(
            "Practitioner",
            "pinyin",
            "string",
            "Practitioner.name",
            f"{CANONICAL}/Practitioner-pinyin",
            derive=person_readings,
            derive_name="rhipPinyin",
        )
    )
    for rtype in ("Organization", "Location"):
        params.append(
            CustomParam(
                rtype,
                "division",
                "string",
                f"{rtype}.address.extension('{DIVISION_EXTENSION}').value",
                f"{CANONICAL}/{rtype}-division",
            )
        )
    return params
