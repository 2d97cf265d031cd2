"""``rhip quality score`` and ``rhip quality report`` as an operator runs them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import orjson

from .test_cli import Cli, output, write_ndjson


def test_score_then_report(migrated: Cli, tmp_path: Path) -> None:
    patients = [
        {"resourceType": "Patient", "id": f"q{i}", "gender": "female", "birthDate": "1990-01-01"}
        for i in range(3)
    ]
    patients[0]["name"] = [{"text": "某人"}]
    imported = migrated("import", str(write_ndjson(tmp_path / "p.ndjson", patients)), "--no-link")
    assert imported.returncode == 0, output(imported)
    first = migrated("quality", "score")
    assert first.returncode == 0, output(first)
    assert "scored 3 resource versions" in output(first)
    again = migrated("quality", "score")
    assert "scored 0 resource versions" in output(again)  # nothing new: nothing counted twice
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    report = migrated("quality", "report", "--month", month, "--out", str(tmp_path / "q.json"))
    assert report.returncode == 0, output(report)
    figures = orjson.loads((tmp_path / "q.json").read_bytes())
    assert figures["scope"] == "region" and figures["resources"] == 3
    rules = {r["rule"]: (r["checked"], r["passed"]) for r in figures["rules"]}
    assert rules["C-PAT-NAME"] == (3, 1)
    assert "completeness" in report.stdout  # the summary table
    sheet = migrated("quality", "report", "--month", month, "--out", str(tmp_path / "q.xlsx"))
    assert sheet.returncode == 0, output(sheet)
    book = openpyxl.load_workbook(tmp_path / "q.xlsx")
    assert book["规则 Rules"]["A1"].value == "规则编号 Rule"


def test_bad_arguments_and_rule_files_are_refused_clearly(migrated: Cli, tmp_path: Path) -> None:
    bad_month = migrated("quality", "report", "--month", "2026-13")
    assert bad_month.returncode == 2 and "month must be YYYY-MM" in output(bad_month)
    bad_out = migrated("quality", "report", "--month", "2026-10", "--out", str(tmp_path / "q.csv"))
    assert bad_out.returncode == 2 and ".xlsx or .json" in output(bad_out)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "completeness.toml").write_text("[ruleset]\nfamily = 'completeness'\n", "utf-8")
    migrated.env["RHIP_QUALITY__RULES_DIR"] = str(rules)
    broken = migrated("quality", "score")
    assert broken.returncode == 2
    assert "completeness.toml" in output(broken) and "needs version" in output(broken)
    assert "Traceback" not in output(broken)
