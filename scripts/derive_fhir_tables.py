#!/usr/bin/env python3
"""Derive rhip's compact FHIR R4 tables from the official CC0 package ``hl7.fhir.r4.examples@4.0.1``.

Run ``python scripts/derive_fhir_tables.py`` (it fetches the package with ``npm pack`` into a temporary
folder) or ``python scripts/derive_fhir_tables.py --package path/to/unpacked/package``. It writes, under
``src/rhip/fhir/data/``:

- ``r4-structure.json``: every resource, complex datatype and backbone element with its elements
  (types, cardinality, required bindings, reference targets) and the primitive datatypes' regexes;
- ``r4-search-parameters.json``: every core SearchParameter per base resource, with the part of its
  FHIRPath expression that concerns that base, targets and composite components;
- ``r4-valuesets-required.json``: the expansion of every value set that a required binding names and that
  can be enumerated from the package's CodeSystems and ValueSets (others are listed as not enumerable);
- ``r4-compartment-patient.json``: the Patient CompartmentDefinition (resource type → parameters).

The output is deterministic (sorted keys) so that re-running the script on the same package changes nothing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
SOURCE = f"HL7 FHIR R4 4.0.1 official package {PACKAGE} (CC0-1.0), derived by scripts/derive_fhir_tables.py"
OUT = Path(__file__).resolve().parent.parent / "src" / "rhip" / "fhir" / "data"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
# Example and extension-defined SearchParameters shipped in the package that are not part of core R4.
EXCLUDED_PARAM_MARKERS = ("-extensions-", "example", "-genetic-")


def fetch_package(workdir: Path) -> Path:
    """Download and unpack the official package with npm; return the ``package`` folder."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    (tgz,) = workdir.glob("*.tgz")
    with tarfile.open(tgz) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def load(package: Path, prefix: str) -> list[dict[str, Any]]:
    """Every JSON file of the package whose name starts with ``prefix``."""
    out = []
    for name in sorted(glob.glob(str(package / f"{prefix}-*.json"))):
        with open(name, encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def type_code(t: dict[str, Any]) -> str:
    """The FHIR type of an ElementDefinition.type entry (System.String for ids becomes 'id'-like 'string')."""
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueUri"))
        return "string"
    return code


def derive_structure(sds: list[dict[str, Any]]) -> dict[str, Any]:
    """Compact element tables for resources, complex types and backbone elements; primitive regexes."""
    types: dict[str, Any] = {}
    primitives: dict[str, Any] = {}
    resources: list[str] = []
    for sd in sds:
        if sd.get("derivation") not in ("specialization", None) or sd["kind"] == "logical":
            continue
        name = sd["id"]
        kind = sd["kind"]
        if kind == "primitive-type":
            regex = None
            for el in sd["snapshot"]["element"]:
                if el["path"] == f"{name}.value":
                    for ext in el["type"][0].get("extension", []):
                        if ext["url"] == REGEX_EXT:
                            regex = ext["valueString"]
            primitives[name] = {"regex": regex}
            continue
        if kind == "resource" and not sd.get("abstract"):
            resources.append(name)
        base = (sd.get("baseDefinition") or "").rsplit("/", 1)[-1] or None
        elements = sd["snapshot"]["element"]
        for el in elements[1:]:
            path: str = el["path"]
            parent, _, leaf = path.rpartition(".")
            entry: dict[str, Any] = {"min": el.get("min", 0), "max": el.get("max", "1")}
            if "contentReference" in el:
                entry["types"] = [el["contentReference"].lstrip("#").split("#")[-1]]
            else:
                codes = [type_code(t) for t in el.get("type", [])]
                if codes in (["BackboneElement"], ["Element"]):
                    # Parts of datatypes are Elements (no modifierExtension); parts of resources are BackboneElements.
                    types.setdefault(path, {"kind": "backbone", "base": codes[0], "elements": {}})
                    codes = [path]
                entry["types"] = codes
                targets = sorted(
                    {
                        p.rsplit("/", 1)[-1]
                        for t in el.get("type", [])
                        if t["code"] in ("Reference", "canonical")
                        for p in t.get("targetProfile", [])
                    }
                )
                if targets:
                    entry["targets"] = targets
            binding = el.get("binding")
            if binding and binding.get("strength") == "required" and binding.get("valueSet"):
                entry["binding"] = binding["valueSet"].split("|")[0]
            if el.get("isModifier"):
                entry["modifier"] = True
            if el.get("isSummary"):
                entry["summary"] = True
            choice = leaf.endswith("[x]")
            if choice:
                leaf = leaf[:-3]
                entry["choice"] = True
            owner = parent
            types.setdefault(
                owner, {"kind": kind if owner == name else "backbone", "base": base, "elements": {}}
            )
            types[owner]["elements"][leaf] = entry
        types.setdefault(name, {"kind": kind, "base": base, "elements": {}})
        types[name]["kind"] = kind
        types[name]["base"] = base
        if sd.get("abstract"):
            types[name]["abstract"] = True
    return {
        "source": SOURCE,
        "fhirVersion": "4.0.1",
        "resourceTypes": sorted(resources),
        "primitives": dict(sorted(primitives.items())),
        "types": dict(sorted(types.items())),
    }


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression at top-level ``|`` operators."""
    parts, depth, quoted, current = [], 0, False, []
    for ch in expression:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "|" and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def root_of(part: str) -> str:
    """The resource type a FHIRPath term starts from (``(Observation.value as Quantity)`` → Observation)."""
    stripped = part.lstrip("(")
    return stripped.split(".", 1)[0].split(" ", 1)[0]


def derive_search_parameters(sps: list[dict[str, Any]], resource_types: list[str]) -> dict[str, Any]:
    """Per base resource: code → {type, expression for that base, targets, components}."""
    by_url = {sp["url"]: sp for sp in sps}
    params: dict[str, dict[str, Any]] = {}
    for sp in sps:
        if "base" not in sp or any(m in sp["id"] for m in EXCLUDED_PARAM_MARKERS):
            continue
        expression = sp.get("expression") or ""
        parts = split_union(expression)
        for base in sp["base"]:
            if base in {"Resource", "DomainResource"}:
                mine = parts
            else:
                mine = [p for p in parts if root_of(p) == base]
                if not mine and len(sp["base"]) == 1:
                    # Expressions such as "name | alias" omit the root: qualify them.
                    mine = [p if root_of(p) == base else f"{base}.{p}" for p in parts]
            entry: dict[str, Any] = {"type": sp["type"], "url": sp["url"], "expression": " | ".join(mine)}
            if sp.get("target"):
                entry["targets"] = sorted(sp["target"])
            if sp.get("modifier"):
                entry["modifiers"] = sorted(sp["modifier"])
            if sp.get("comparator"):
                entry["comparators"] = sorted(sp["comparator"])
            if sp["type"] == "composite":
                comps = []
                for comp in sp["component"]:
                    ref = by_url.get(comp["definition"])
                    comps.append(
                        {
                            "code": ref["code"] if ref else comp["definition"].rsplit("-", 1)[-1],
                            "type": ref["type"] if ref else "token",
                            "expression": comp["expression"],
                        }
                    )
                entry["components"] = comps
            params.setdefault(base, {})[sp["code"]] = entry
    for base, by_code in params.items():
        params[base] = dict(sorted(by_code.items()))
    unknown = sorted(set(params) - set(resource_types) - {"Resource", "DomainResource"})
    if unknown:
        raise SystemExit(f"SearchParameter bases that are not resource types: {unknown}")
    return {"source": SOURCE, "fhirVersion": "4.0.1", "params": dict(sorted(params.items()))}


def codes_of_system(cs: dict[str, Any]) -> list[str]:
    """All codes of a CodeSystem, walking nested concepts."""
    out: list[str] = []

    def walk(concepts: list[dict[str, Any]]) -> None:
        for c in concepts:
            out.append(c["code"])
            walk(c.get("concept", []))

    walk(cs.get("concept", []))
    return out


def descendants(cs: dict[str, Any], code: str, include_self: bool) -> list[str]:
    """Codes below ``code`` in a CodeSystem hierarchy (is-a / descendent-of filters)."""

    def find(concepts: list[dict[str, Any]]) -> dict[str, Any] | None:
        for c in concepts:
            if c["code"] == code:
                return c
            hit = find(c.get("concept", []))
            if hit:
                return hit
        return None

    node = find(cs.get("concept", []))
    if node is None:
        return []
    sub = codes_of_system({"concept": node.get("concept", [])})
    return ([code] if include_self else []) + sub


def expand(
    vs_url: str, valuesets: dict[str, Any], codesystems: dict[str, Any], seen: set[str]
) -> list[list[str]] | None:
    """Expand a value set into [system, code] pairs, or None when the package cannot enumerate it."""
    if vs_url in seen:
        return None
    seen = seen | {vs_url}
    vs = valuesets.get(vs_url)
    if vs is None or "compose" not in vs:
        return None
    result: set[tuple[str, str]] = set()
    for inc in vs["compose"].get("include", []):
        pairs = include_pairs(inc, valuesets, codesystems, seen)
        if pairs is None:
            return None
        result |= pairs
    for exc in vs["compose"].get("exclude", []):
        pairs = include_pairs(exc, valuesets, codesystems, seen)
        if pairs is None:
            return None
        result -= pairs
    return sorted([s, c] for s, c in result)


def include_pairs(
    inc: dict[str, Any], valuesets: dict[str, Any], codesystems: dict[str, Any], seen: set[str]
) -> set[tuple[str, str]] | None:
    """The [system, code] pairs selected by one compose.include entry."""
    pairs: set[tuple[str, str]] | None = None
    system = inc.get("system")
    if system:
        if "concept" in inc:
            pairs = {(system, c["code"]) for c in inc["concept"]}
        else:
            cs = codesystems.get(system)
            if cs is None or cs.get("content") not in ("complete", None):
                return None
            if inc.get("filter"):
                selected: set[str] = set()
                for flt in inc["filter"]:
                    if flt["op"] in ("is-a", "descendent-of") and flt["property"] == "concept":
                        selected |= set(descendants(cs, flt["value"], flt["op"] == "is-a"))
                    else:
                        return None
                pairs = {(system, c) for c in selected}
            else:
                pairs = {(system, c) for c in codes_of_system(cs)}
    for ref in inc.get("valueSet", []):
        sub = expand(ref.split("|")[0], valuesets, codesystems, seen)
        if sub is None:
            return None
        subset = {(s, c) for s, c in sub}
        pairs = subset if pairs is None else pairs & subset
    return pairs


def derive_required_valuesets(
    structure: dict[str, Any], vss: list[dict[str, Any]], css: list[dict[str, Any]]
) -> dict[str, Any]:
    """Expansions of the value sets named by required bindings."""
    valuesets = {vs["url"]: vs for vs in vss}
    codesystems = {cs["url"]: cs for cs in css}
    wanted = sorted(
        {
            el["binding"]
            for t in structure["types"].values()
            for el in t["elements"].values()
            if "binding" in el
        }
    )
    expansions: dict[str, Any] = {}
    not_enumerable: list[str] = []
    for url in wanted:
        pairs = expand(url, valuesets, codesystems, set())
        if pairs is None or not pairs:
            not_enumerable.append(url)
        else:
            expansions[url] = pairs
    return {
        "source": SOURCE,
        "fhirVersion": "4.0.1",
        "note": "Value sets in notEnumerable (external code systems such as BCP-47, MIME types, UCUM) are not checked.",
        "notEnumerable": not_enumerable,
        "expansions": expansions,
    }


def derive_patient_compartment(package: Path) -> dict[str, Any]:
    """Resource type → the search parameters that place it in a Patient compartment."""
    with open(package / "CompartmentDefinition-patient.json", encoding="utf-8") as fh:
        cd = json.load(fh)
    members = {r["code"]: r["param"] for r in cd["resource"] if r.get("param")}
    return {
        "source": SOURCE,
        "fhirVersion": "4.0.1",
        "compartment": "Patient",
        "resources": dict(sorted(members.items())),
    }


def write(name: str, data: dict[str, Any]) -> None:
    """Write one table, compact but with one top-level key per line for readable diffs."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        fh.write("\n")
    print(
        f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path} ({os.path.getsize(path):,} bytes)"
    )


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--package", type=Path, help="an unpacked package folder (default: npm pack into a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or fetch_package(Path(tmp))
        structure = derive_structure(load(package, "StructureDefinition"))
        write("r4-structure.json", structure)
        write(
            "r4-search-parameters.json",
            derive_search_parameters(load(package, "SearchParameter"), structure["resourceTypes"]),
        )
        write(
            "r4-valuesets-required.json",
            derive_required_valuesets(structure, load(package, "ValueSet"), load(package, "CodeSystem")),
        )
        write("r4-compartment-patient.json", derive_patient_compartment(package))
    return 0


if __name__ == "__main__":
    sys.exit(main())
