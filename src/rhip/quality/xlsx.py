"""The quality report as a spreadsheet (openpyxl): one sheet per view, Chinese headers with English beside.

Sheets: 汇总 Summary (scope, period, totals and one row per family), 规则 Rules, 每日趋势 Daily trend,
问题字段 Worst fields, 上传时延 Delays, 示例 Examples and, for the region, 机构 Institutions. Rates are
fractions (0–1) formatted as percentages; a rate with nothing checked is left empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from rhip.quality.report import QualityReport

FAMILY_NAMES = {
    "completeness": "完整性 Completeness",
    "validity": "有效性 Validity",
    "consistency": "一致性 Consistency",
    "timeliness": "及时性 Timeliness",
}
COUNTS = ["检查数 Checked", "通过数 Passed", "未通过数 Failed", "通过率 Rate"]
SHEETS = {
    "summary": "汇总 Summary",
    "rules": "规则 Rules",
    "days": "每日趋势 Daily trend",
    "fields": "问题字段 Worst fields",
    "delays": "上传时延 Delays",
    "examples": "示例 Examples",
    "institutions": "机构 Institutions",
}


def _counts(row: dict[str, Any]) -> list[Any]:
    return [row["checked"], row["passed"], row["failed"], row["rate"]]


def _table(sheet: Any, headers: list[str], rows: list[list[Any]], rate_columns: tuple[int, ...] = ()) -> None:
    start = sheet.max_row + 1 if sheet.max_row > 1 else 1
    sheet.append(headers)
    for cell in sheet[start]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for column in rate_columns:
        for (cell,) in sheet.iter_rows(min_row=start + 1, min_col=column, max_col=column):
            cell.number_format = "0.00%"
    for index, header in enumerate(headers, start=1):
        letter = sheet.cell(row=start, column=index).column_letter
        sheet.column_dimensions[letter].width = max(
            sheet.column_dimensions[letter].width or 0, len(header) + 6
        )


def write_report(report: QualityReport, path: Path) -> None:
    """Write ``report`` to ``path`` (.xlsx)."""
    data = report.as_dict()
    book = Workbook()
    summary = book.active
    summary.title = SHEETS["summary"]
    scope = "全区域 Region" if data["scope"] == "region" else data["scope"]
    for label, value in (
        ("范围 Scope", scope),
        ("起始日期 First day", data["period"]["first"]),
        ("结束日期 Last day", data["period"]["last"]),
        ("质控资源数 Resources scored", data["resources"]),
        ("被拒收消息数 Messages refused", data["rejected_messages"]),
        *(
            (f"规则版本 Rules {FAMILY_NAMES[f]}", v)
            for f, v in data["rule_versions"].items()
            if f in FAMILY_NAMES
        ),
    ):
        summary.append([label, value])
    summary.append([])
    _table(
        summary,
        ["质控类别 Family", *COUNTS],
        [[FAMILY_NAMES[f["family"]], *_counts(f)] for f in data["families"]],
        rate_columns=(5,),
    )
    summary.column_dimensions["A"].width = 36
    headers = [
        "规则编号 Rule",
        "类别 Family",
        "资源类型 Resource type",
        "字段 Element",
        "规则 Rule (中文)",
        "Rule (English)",
    ]
    _table(
        book.create_sheet(SHEETS["rules"]),
        [*headers, *COUNTS],
        [
            [
                r["rule"],
                FAMILY_NAMES[r["family"]],
                r["resource_type"],
                r["element"],
                r["label_zh"],
                r["label_en"],
                *_counts(r),
            ]
            for r in data["rules"]
        ],
        rate_columns=(10,),
    )
    families = list(FAMILY_NAMES)
    _table(
        book.create_sheet(SHEETS["days"]),
        ["日期 Day", "资源数 Resources", *(f"{FAMILY_NAMES[f]} 通过率 Rate" for f in families)],
        [[d["day"], d["resources"], *(d.get(f) for f in families)] for d in data["days"]],
        rate_columns=(3, 4, 5, 6),
    )
    _table(
        book.create_sheet(SHEETS["fields"]),
        ["资源类型 Resource type", "字段 Element", *COUNTS],
        [[w["resource_type"], w["element"], *_counts(w)] for w in data["worst_fields"]],
        rate_columns=(6,),
    )
    _table(
        book.create_sheet(SHEETS["delays"]),
        ["上传时延 Delay (event → arrival)", "资源数 Resources"],
        [[d["bucket"], d["resources"]] for d in data["delays"]],
    )
    _table(
        book.create_sheet(SHEETS["examples"]),
        [
            "日期 Day",
            "机构 Institution",
            "规则编号 Rule",
            "资源类型 Resource type",
            "资源ID Id",
            "版本 Version",
            "字段 Element",
        ],
        [
            [e["day"], e["institution"], e["rule"], e["resource_type"], e["id"], e["version"], e["element"]]
            for e in data["examples"]
        ],
    )
    if data["scope"] == "region":
        _table(
            book.create_sheet(SHEETS["institutions"]),
            ["机构 Institution", *COUNTS, *(f"{FAMILY_NAMES[f]} 通过率 Rate" for f in families)],
            [
                [i["institution"] or "（未归属）Unattributed", *_counts(i), *(i.get(f) for f in families)]
                for i in data["institutions"]
            ],
            rate_columns=(5, 6, 7, 8, 9),
        )
    book.save(path)
