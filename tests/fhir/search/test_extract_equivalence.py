"""The fast extraction paths (generated code, key prefilter, composite shortcuts) against the plain interpreter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rhip.fhir.definitions import structure
from rhip.fhir.fhirpath import FhirPathCompiler
from rhip.fhir.fhirpath_codegen import StaticCompiler
from rhip.fhir.search.extract import IndexEntries, IndexExtractor
from rhip.fhir.search.params import registry
from rhip.synth.sample import SampleRegion

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "data" / "r4-examples").glob("*.json"))
ZONE = ZoneInfo("Asia/Shanghai")


def _resources() -> list[dict[str, Any]]:
    out = [json.loads(p.read_text("utf-8")) for p in EXAMPLES]
    out = [r for r in out if structure().is_resource_type(r.get("resourceType", ""))]
    out += [r for record in SampleRegion(3).residents(3) for r in record]
    return out


RESOURCES = _resources()


def _slow_entries(extractor: IndexExtractor, resource: dict[str, Any]) -> IndexEntries:
    """Every parameter evaluated by the interpreter, with no prefilter and no composite shortcut."""
    interp = FhirPathCompiler(structure())
    entries = IndexEntries()
    root = (resource, resource["resourceType"])
    for param in registry().for_type(resource["resourceType"]).values():
        if param.extract is None or param.derived_from:
            continue
        nodes = interp.compile(param.expression)(resource)
        if param.type != "composite":
            for node in nodes:
                extractor.add(param.type, param.code, node, entries)
            continue
        *leading, last = param.components
        for base in nodes:
            keys = [""]
            for comp in leading:
                values = extractor.composite_keys(
                    comp.type, interp.compile_relative(comp.expression)([base], root)
                )
                keys = [f"{k}${v}" if k else v for k in keys for v in values]
            scratch = IndexEntries()
            for node in interp.compile_relative(last.expression)([base], root):
                extractor.add(last.type, "", node, scratch)
            for key in keys:
                code = f"{param.code}${key}"
                entries.quantities.update((code, s, u, lo, hi) for _c, s, u, lo, hi in scratch.quantities)
                entries.tokens.update((code, s, v) for c, s, v in scratch.tokens if not c)
                entries.strings.update((code, n, x) for c, n, x in scratch.strings if not c)
                entries.dates.update((code, lo, hi) for _c, lo, hi in scratch.dates)
                entries.numbers.update((code, v) for _c, v in scratch.numbers)
                entries.references.update((code, t, i, u) for c, t, i, u in scratch.references if not c)
                entries.uris.update((code, u) for _c, u in scratch.uris)
    return entries


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: f"{r['resourceType']}-{r.get('id', '')[:12]}")
def test_fast_extraction_equals_interpreter(resource: dict[str, Any]) -> None:
    extractor = IndexExtractor(registry(), ZONE)
    fast = extractor.extract(resource)
    slow = _slow_entries(extractor, resource)
    for kind in ("strings", "tokens", "dates", "numbers", "quantities", "references", "uris"):
        assert getattr(fast, kind) == getattr(slow, kind), kind


def test_generated_code_matches_interpreter_on_every_parameter() -> None:
    table = structure()
    static, interp = StaticCompiler(table), FhirPathCompiler(table)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in RESOURCES:
        by_type.setdefault(r["resourceType"], []).append(r)
    compiled = 0
    for rtype, params in ((t, registry().for_type(t)) for t in by_type):
        for param in params.values():
            if not param.expression or param.column:
                continue
            fast = static.compile(param.expression, rtype)
            if fast is None:
                continue
            compiled += 1
            slow = interp.compile(param.expression)
            for r in by_type[rtype]:
                assert [(id(v) if isinstance(v, dict | list) else v, t) for v, t in fast(r, r)] == [
                    (id(v) if isinstance(v, dict | list) else v, t) for v, t in slow(r)
                ], (rtype, param.code)
    assert compiled > 200
