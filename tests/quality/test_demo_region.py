"""The scorer and the report on a synthetic region: the FHIR files `make demo` loads, for the 300-resident
region of tests/conftest.py (var/ex-small; `make demo` builds the same with 5,000 residents).

The synthetic region sends its FHIR without ``meta.source`` (it is loaded by an operator's bulk import), so
every resource is attributed through the Organization it names (attribution.py); the test checks that each
institution file's resources land under that institution, and that the report holds no personal data.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from tests.conftest import SMALL_REGION, make_settings

from rhip.bootstrap.container import build_platform, database
from rhip.bootstrap.quality import build_quality
from rhip.db.migrate import upgrade
from rhip.fhir.bulk import BulkImporter, ImportSummary
from rhip.quality.report import month_period
from rhip.quality.xlsx import write_report

from .fixture import drain

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the arrival day is counted in the platform's zone


def test_the_report_runs_on_the_synthetic_region(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/rhip.db")
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings, empi=False, exchange=False)
    try:
        started = datetime.now(SHANGHAI).strftime("%Y-%m")
        files = sorted((SMALL_REGION / "fhir").glob("*.ndjson"))
        summary = ImportSummary()
        importer = BulkImporter(platform.fhir, platform.repository, 500)
        for file in files:
            with file.open("rb") as fh:
                importer.import_stream(fh, str(file), summary)
        assert not summary.rejected
        service = build_quality(platform)
        drain(service, platform)
        month = datetime.now(SHANGHAI).strftime("%Y-%m")
        report = service.report(month_period(month, None))
        figures = report.as_dict()
        if month != started:  # the import ran over a month's end: count what arrived in the month before too
            figures["resources"] += service.report(month_period(started, None)).resources
    finally:
        platform.close()
    # What was scored: every resource of a type with rules (each imported once: version 1).
    expected: Counter[str] = Counter()
    names: list[str] = []
    by_institution: Counter[str] = Counter()
    for file in files:
        for line in file.read_bytes().splitlines():
            resource = orjson.loads(line)
            if resource["resourceType"] in service.scorer.by_type:
                expected[resource["resourceType"]] += 1
                if file.stem != "0-registry":
                    by_institution[file.stem] += 1
            if resource["resourceType"] == "Patient":
                names += [n["text"] for n in resource.get("name", ()) if n.get("text")]
    assert figures["resources"] == sum(expected.values())
    assert {f["family"] for f in figures["families"]} == {
        "completeness",
        "validity",
        "consistency",
        "timeliness",
    }
    for row in figures["families"] + figures["rules"]:
        assert 0 <= row["rate"] <= 1 and row["checked"] >= row["passed"]
    institutions = {i["institution"] for i in figures["institutions"]}
    assert set(by_institution) <= institutions  # each institution's file is attributed to it
    per_rule = Counter(e["rule"] for e in figures["examples"])
    assert per_rule and max(per_rule.values()) <= 10  # the report shows a few per rule
    text = orjson.dumps(figures).decode()
    assert names and not any(name in text for name in names)
    write_report(report, tmp_path / "region.xlsx")
    assert (tmp_path / "region.xlsx").stat().st_size > 0
