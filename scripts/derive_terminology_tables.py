#!/usr/bin/env python3
"""Derive the terminology service's code tables that other parts of this repository already hold.

Each table is written to ``src/rhip/terminology/data/`` with a header naming the files it comes from, so the
two cannot drift apart unseen (tests/terminology/test_tables_derived.py derives them again and compares):

- ``gb-t-2260-divisions.csv`` from the resident index's division table
  (``src/rhip/empi/normalize/data/divisions.csv``, written by scripts/derive_empi_tables.py, which names its
  sources: cpca 0.5.5's adcodes.csv for the whole country, the 2023 statistical division codes for 绵阳市). It
  holds provinces, prefectures and counties by their significant digits (51, 5107, 510703); the table gets their
  6-digit GB/T 2260 codes (510000, 510700, 510703), each under the prefecture or, where the table has none
  (市辖区, 省直辖县级行政区划), the province; a division the source notes as replaced gets ``valid_to`` at the end
  of that year. Townships and villages (9- and 12-digit 统计用区划代码) are another code system and are left out.
- ``ws-t-483-500-document-types.csv``: the shared-document codes (WS/T 483 HSD…, WS/T 500 C00nn) from the
  document registry's ``src/rhip/documents/cda/data/document-types.csv``, checked against
  ``../shared/reference/wst500-documents.psv`` when that file is present.
- ``nip-vaccines.csv``: the national immunization programme's vaccine codes the synthetic region writes
  (``src/rhip/synth/data/immunization-schedules.toml``) plus the one more code cn-standards.md §5 lists.
- ``ws-363-data-elements.csv``: the WS 363 data-element ids the CDA writer (``src/rhip/cda``) and reader
  (``src/rhip/documents/cda``) use, with the names the code gives them.
- ``icd-10-diagnoses.csv``: the 22 ICD-10 chapters and the diagnosis codes the synthetic region's clinical and
  notifiable-disease tables (``src/rhip/synth/data/clinical.toml``, ``notifiable.toml``) write.

    python scripts/derive_terminology_tables.py

The output is deterministic: re-running on the same input changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "rhip" / "terminology" / "data"
COLUMNS = ["code", "display", "display_en", "parent", "verified", "valid_from", "valid_to"]
Row = tuple[str, str, str, str, str, str, str]


def table(header: str, rows: Iterable[Row]) -> str:
    """The text of a code table file: the ``#`` header, the column line and the rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return header + out.getvalue()


def uncommented(path: Path) -> str:
    """A CSV file's text without its ``#`` lines."""
    lines = path.read_text(encoding="utf-8").splitlines(True)
    return "".join(line for line in lines if not line.startswith("#"))


# -- GB/T 2260 divisions -----------------------------------------------------------------------------------
DIVISIONS_SOURCE = ROOT / "src" / "rhip" / "empi" / "normalize" / "data" / "divisions.csv"
DIVISIONS_HEADER = """# name: GB/T 2260 中华人民共和国行政区划代码
# title: 行政区划代码 (administrative divisions: provinces, prefectures, counties; GB/T 2260)
# url: urn:rhip:cs:gb-t-2260
# valueset: urn:rhip:vs:gb-t-2260
# version: 2020-11 (cpca adcodes) with 绵阳市 from the 2023 statistical division codes
# source: src/rhip/empi/normalize/data/divisions.csv of this repository (its header names its sources: cpca 0.5.5
#   adcodes.csv, MIT, file dated 2020-11-07, for the country; the National Bureau of Statistics' 2023 statistical
#   division codes for 绵阳市), derived by scripts/derive_terminology_tables.py
# verified: no row was checked against the Ministry of Civil Affairs' published list; codes changed after 2020
#   outside 绵阳市 are not reflected. valid_to of a replaced division is the end of the year its source gives.
#   Divisions created after 2020 are missing, hence content: fragment (a code not listed is not refused on write).
# content: fragment
"""


def six(code: str) -> str:
    """The 6-digit GB/T 2260 code of a division given by its significant digits."""
    return code.ljust(6, "0")


def divisions() -> str:
    """The GB/T 2260 table."""
    text = uncommented(DIVISIONS_SOURCE)
    rows = [r for r in csv.DictReader(io.StringIO(text)) if len(r["code"]) in (2, 4, 6)]
    present = {six(r["code"]) for r in rows}
    out: list[Row] = []
    for r in sorted(rows, key=lambda r: six(r["code"])):
        code = six(r["code"])
        if len(r["code"]) == 2:
            parent = ""
        elif len(r["code"]) == 4:
            parent = code[:2] + "0000"
        else:
            prefecture = code[:4] + "00"
            parent = prefecture if prefecture in present else code[:2] + "0000"
        replaced = re.search(r"valid until (\d{4})", r.get("note") or "")
        valid_to = f"{replaced.group(1)}-12-31" if replaced else ""
        out.append((code, r["name"], "", parent, "no", "", valid_to))
    return table(DIVISIONS_HEADER, out)


# -- WS/T 483 and WS/T 500 shared-document codes ---------------------------------------------------------
DOCUMENTS_SOURCE = ROOT / "src" / "rhip" / "documents" / "cda" / "data" / "document-types.csv"
WST500_PSV = ROOT.parent / "shared" / "reference" / "wst500-documents.psv"
# The codes document-types.csv (after cn-standards.md §3.1) gives to WS/T 483 parts 17-20 by their order only.
BY_ORDER_ONLY = frozenset(("HSDC00.02", "HSDC00.03", "HSDC00.04", "HSDC00.05"))
DOCUMENTS_HEADER = """# name: WS/T 483-2016 WS/T 500-2016 共享文档编码
# title: 卫生信息共享文档编码体系 (shared-document codes: WS/T 483 health-record documents HSD…, WS/T 500 EMR
#   documents C00nn)
# url: urn:oid:2.16.156.10011.2.4
# valueset: urn:rhip:vs:ws-t-483-500-documents
# content: complete
# version: WS/T 483.1-20-2016, WS/T 500.1-53-2016
# source: src/rhip/documents/cda/data/document-types.csv of this repository (its header names its sources: the 53
#   public WS/T 500 sample documents of repository wangk4i/LangZhongGit @7357997 via
#   ../shared/reference/wst500-documents.psv, whose codes and templateIds the script checks; titles from
#   cn-standards.md §3.1 and §3.2, vendor code bases for WS/T 483), derived by scripts/derive_terminology_tables.py
# verified: WS/T 500 C0001-C0053 are the codes of public sample documents; WS/T 483 codes HSDA00.01-HSDC00.01
#   come from vendor code bases; HSDC00.02-HSDC00.05 are given to parts 17-20 by their order only (verified=no).
#   No title was checked against the standards' texts.
"""


def _psv_codes() -> dict[str, str] | None:
    """WS/T 500 code -> templateId from the shared reference list, or None when it is not beside the checkout."""
    if not WST500_PSV.exists():
        return None
    rows = [line.split("|") for line in WST500_PSV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {code: template for _part, code, _name, template in rows}


def document_types() -> str:
    """The WS/T 483 / WS/T 500 document-code table (WS/T 500 first, in part order, then WS/T 483)."""
    rows = list(csv.DictReader(io.StringIO(uncommented(DOCUMENTS_SOURCE))))
    reference = _psv_codes()
    if reference is not None:
        ours = {r["code"]: r["template_id"] for r in rows if r["code"].startswith("C")}
        if ours != reference:
            raise SystemExit(f"{DOCUMENTS_SOURCE.name} and {WST500_PSV.name} disagree on WS/T 500 codes")
    out: list[Row] = []
    for r in rows:
        verified = "no" if r["code"] in BY_ORDER_ONLY else "yes"
        out.append((r["code"], r["display"], "", "", verified, "", ""))
    return table(DOCUMENTS_HEADER, out)


# -- National immunization programme vaccine codes ---------------------------------------------------------
SCHEDULES = ROOT / "src" / "rhip" / "synth" / "data" / "immunization-schedules.toml"
# Codes cn-standards.md §5 lists ("NIP vaccine codes used by an immunization-system script", unverified) that
# the schedules do not use: 1901/1903 are both listed as 甲肝, without saying which kind 1903 is.
REFERENCE_ONLY_VACCINES: tuple[Row, ...] = (("1903", "甲肝疫苗", "HepA", "", "no", "", ""),)
VACCINES_HEADER = """# name: NIP 国家免疫规划疫苗代码
# title: 国家免疫规划疫苗代码 (national immunization programme vaccine codes)
# url: urn:rhip:cs:nip-vaccine
# valueset: urn:rhip:vs:nip-vaccine
# content: fragment
# version: 2025-1 (the codes of the 2021 and 2025 childhood schedules)
# source: src/rhip/synth/data/immunization-schedules.toml of this repository ([vaccines]: code, name, English
#   abbreviation), whose codes are those cn-standards.md §5 lists from an immunization-system script; 1903 from
#   that list alone. Derived by scripts/derive_terminology_tables.py. No OID is known (the URL is rhip's own,
#   as in src/rhip/synth/systems.py and the CDA code-systems table).
# verified: no: the codes come from one unverified script; the names are the platform's (cn-standards.md names
#   1201 含麻疹成分, the schedules 麻腮风疫苗); 1903 is named only 甲肝 there. Check against the programme's
#   own code list (免疫规划信息系统) before relying on them.
"""


def nip_vaccines() -> str:
    """The NIP vaccine-code table: the schedules' vaccines, then the reference-only codes."""
    vaccines = tomllib.loads(SCHEDULES.read_text(encoding="utf-8"))["vaccines"]
    out: list[Row] = [(code, v["name"], v["en"], "", "no", "", "") for code, v in sorted(vaccines.items())]
    out += [row for row in REFERENCE_ONLY_VACCINES if row[0] not in vaccines]
    return table(VACCINES_HEADER, sorted(out))


# -- WS 363 data elements the CDA code uses -----------------------------------------------------------------
CDA_SOURCES = (ROOT / "src" / "rhip" / "cda", ROOT / "src" / "rhip" / "documents" / "cda")
VITAL_SIGNS = ROOT / "src" / "rhip" / "documents" / "cda" / "data" / "vital-signs.csv"
ELEMENT = r"DE\d\d\.\d\d\.\d\d\d\.\d\d"
ELEMENT_ID = re.compile(rf"{ELEMENT}(?:–\.\d\d)?")
CJK = re.compile(r"[\u4e00-\u9fff]")
# How the code names an element: de("DE…", "名称") and ("DE…", "名称") pairs; X = "DE…"  # 名称 constants;
# "DE… 名称" in prose (docstrings and comments).
NAME_PATTERNS = (
    re.compile(rf'"({ELEMENT})",\s*"([^"]+)"'),
    re.compile(rf'"({ELEMENT})"\s*#\s*([^\n(]+)'),
    re.compile(rf"({ELEMENT})\s+([\u4e00-\u9fff][^\s,，;；.。)]*)"),
)
# cn-standards.md §3.4 "Data-element ids (WS 363) seen repeatedly in code" (several vendor code bases and a
# PostgreSQL dump): id -> name, as listed there. The address range DE02.01.009.01-.06 is given there as
# 省/市/县/乡/村/门牌 in that order; the names below pair them by that order (so those rows stay unverified).
REFERENCE_ELEMENTS = {
    "DE02.01.039.00": "姓名",
    "DE02.01.040.00": "性别代码",
    "DE02.01.005.01": "出生日期",
    "DE02.01.030.00": "身份证件号码",
    "DE02.01.031.00": "身份证件类别代码",
    "DE02.01.025.00": "民族",
    "DE02.01.018.00": "婚姻状况代码",
    "DE02.01.010.00": "本人电话",
    "DE02.01.024.00": "地址类别",
    "DE02.01.026.00": "年龄",
    "DE02.01.060.00": "患者类型",
    "DE01.00.010.00": "门(急)诊号",
    "DE04.50.001.00": "ABO血型",
    "DE04.50.010.00": "Rh血型",
    "DE04.10.174.00": "收缩压",
    "DE04.10.176.00": "舒张压",
    "DE09.00.053.00": "签名日期时间",
}
ADDRESS_PARTS = ("省", "市", "县", "乡", "村", "门牌")
ELEMENTS_HEADER = """# name: WS 363 卫生信息数据元目录 (the data elements rhip's CDA documents use)
# title: 卫生信息数据元目录 (WS 363 data-element identifiers written and read by rhip's CDA code)
# url: urn:oid:2.16.156.10011.2.2.1
# valueset: urn:rhip:vs:ws-363-data-elements
# content: fragment
# version: WS 363-2011 (the ids rhip uses, 2025-1)
# source: the ids found in src/rhip/cda and src/rhip/documents/cda of this repository (and their data file
#   vital-signs.csv), derived by scripts/derive_terminology_tables.py. display: the name cn-standards.md §3.4
#   gives; else the names the code gives the id, joined by " / " where the code names it differently by context
#   (检验项目代码 / 检查项目代码); they are the WS/T 500 sections' names, not necessarily WS 363's own.
#   DE02.01.009.01-.06 (address parts, named by cn-standards.md §3.4's 省/市/县/乡/村/门牌 in order) are the
#   parts of the CDA header's addresses.
# verified: yes = listed in cn-standards.md §3.4 (several vendor code bases); no = used by rhip's code after the
#   WS/T 500 samples, the 2012 draft samples (marked inferred in the code) or unsourced; none was checked against
#   the text of WS 363. The table lists only the ids rhip uses, not the catalogue.
"""


def _code_files() -> list[Path]:
    return sorted(p for folder in CDA_SOURCES for p in folder.rglob("*.py"))


def _expand(found: str) -> list[str]:
    """An id, or a range such as DE02.01.009.01–.06, as the ids it names."""
    if "–" not in found:
        return [found]
    first, last = found.split("–")
    head, low = first[:-2], int(first[-2:])
    return [f"{head}{n:02d}" for n in range(low, int(last[1:]) + 1)]


def used_data_elements() -> dict[str, list[str]]:
    """Each data-element id the CDA code uses, with the names it gives it (in order, each once)."""
    names: dict[str, list[str]] = {}
    texts = [p.read_text(encoding="utf-8") for p in _code_files()]
    for text in texts:
        for found in ELEMENT_ID.findall(text):
            for element in _expand(found):
                names.setdefault(element, [])
    vitals = csv.DictReader(io.StringIO(uncommented(VITAL_SIGNS)))
    for row in vitals:
        names.setdefault(row["element"], []).append(row["name"].strip())
    for text in texts:
        for pattern in NAME_PATTERNS:
            for element, name in pattern.findall(text):
                for part in name.split(" / "):
                    part = part.strip()
                    if CJK.search(part):
                        names.setdefault(element, []).append(part)
    return {k: list(dict.fromkeys(v)) for k, v in sorted(names.items())}


def data_elements() -> str:
    """The table of the WS 363 data elements the CDA code uses."""
    out: list[Row] = []
    for element, names in used_data_elements().items():
        address = element.startswith("DE02.01.009.")
        if element in REFERENCE_ELEMENTS:
            display, verified = REFERENCE_ELEMENTS[element], "yes"
        elif address:
            display, verified = f"地址-{ADDRESS_PARTS[int(element[-2:]) - 1]}", "no"
        elif names:
            display, verified = " / ".join(names), "no"
        else:
            raise SystemExit(f"the code uses {element} without naming it: name it where it is used")
        out.append((element, display, "", "", verified, "", ""))
    return table(ELEMENTS_HEADER, out)


# -- ICD-10 diagnoses ---------------------------------------------------------------------------------------
SYNTH_DATA = ROOT / "src" / "rhip" / "synth" / "data"
# The 22 chapters: number, first and last category, Chinese title. Titles and ranges from a public Java code
# base (package com.gennlife.fs.system.config, class DiseaseCodeConfig: the titles in chapter order and a
# decoder giving each chapter's letters and numbers); the ranges agree with a second public code base's
# chapter list (A00-B99 … V01-Y98, Z00-Z99), which gives U00-U99 for chapter XXII where the first has U00-U85.
CHAPTERS = (
    ("I", "A00", "B99", "某些传染病和寄生虫病"),
    ("II", "C00", "D48", "肿瘤"),
    ("III", "D50", "D89", "血液及造血器官疾病和涉及免疫机制的某些疾患"),
    ("IV", "E00", "E90", "内分泌、营养和代谢疾病"),
    ("V", "F00", "F99", "精神和行为障碍"),
    ("VI", "G00", "G99", "神经系统疾病"),
    ("VII", "H00", "H59", "眼和附器疾病"),
    ("VIII", "H60", "H95", "耳和乳突疾病"),
    ("IX", "I00", "I99", "循环系统疾病"),
    ("X", "J00", "J99", "呼吸系统疾病"),
    ("XI", "K00", "K93", "消化系统疾病"),
    ("XII", "L00", "L99", "皮肤和皮下组织疾病"),
    ("XIII", "M00", "M99", "肌肉骨骼系统和结缔组织疾病"),
    ("XIV", "N00", "N99", "泌尿生殖系统疾病"),
    ("XV", "O00", "O99", "妊娠、分娩和产褥期"),
    ("XVI", "P00", "P96", "起源于围生期的某些情况"),
    ("XVII", "Q00", "Q99", "先天性畸形、变形和染色体异常"),
    ("XVIII", "R00", "R99", "症状、体征和临床与实验室异常所见，不可归类在他处者"),
    ("XIX", "S00", "T98", "损伤、中毒和外因的某些其他后果"),
    ("XX", "V01", "Y98", "疾病和死亡的外因"),
    ("XXI", "Z00", "Z99", "影响健康状态和与保健机构接触的因素"),
    ("XXII", "U00", "U85", "用于特殊目的的编码"),
)
ICD10_HEADER = """# name: ICD-10 疾病分类与代码 (the chapters and the codes rhip uses)
# title: 疾病分类与代码 ICD-10 (chapters I-XXII and the diagnosis codes the platform writes; not the whole
#   classification)
# url: urn:oid:2.16.156.10011.2.3.3.11
# valueset: urn:rhip:vs:icd-10
# content: fragment
# version: 2025-1 (rhip's selection: the 22 chapters and the codes its synthetic region writes)
# source: chapters (code = the chapter's Roman number, display = title and category range): a public Java code
#   base (package com.gennlife.fs.system.config, DiseaseCodeConfig), ranges agreeing with a second public code
#   base's chapter list except chapter XXII (U00-U85 here, U00-U99 there). Codes and their displays:
#   src/rhip/synth/data/clinical.toml ([[acute]], [[chronic]], [[cancer]], [[death_cause]]) and notifiable.toml
#   ([diseases.*] icd10) of this repository, derived by scripts/derive_terminology_tables.py; a code is under its
#   3-character category when the table has it, else under its chapter.
# verified: no row: the displays are the names the platform writes (a notifiable disease's name for its code,
#   e.g. J11.1 流行性感冒), not the titles of ICD-10 or of the 国家临床版 2.0, whose text is not public under a
#   licence that lets it ship here. A region loads its full licensed ICD-10 as an operator table with this url
#   (RHIP_TERMINOLOGY__TABLES_DIR), which replaces this one.
"""


def chapter_of(code: str) -> str:
    """The Roman number of the chapter whose category range holds ``code``."""
    category = code[:3]
    for number, first, last, _title in CHAPTERS:
        if first <= category <= last:
            return number
    raise SystemExit(f"ICD-10 code {code} is in no chapter")


def used_icd10_codes() -> dict[str, str]:
    """Each ICD-10 code the synthetic region writes, with the name it writes (first one when named twice)."""
    clinical = tomllib.loads((SYNTH_DATA / "clinical.toml").read_text(encoding="utf-8"))
    notifiable = tomllib.loads((SYNTH_DATA / "notifiable.toml").read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []
    for kind in ("acute", "chronic", "cancer", "death_cause"):
        found += [(entry["code"], entry["name"]) for entry in clinical[kind]]
    found += [(d["icd10"], d["name"]) for _key, d in sorted(notifiable["diseases"].items())]
    codes: dict[str, str] = {}
    for code, name in found:
        codes.setdefault(code, name)
    return codes


def icd10() -> str:
    """The ICD-10 table: the chapters, then the codes in code order."""
    out: list[Row] = [
        (number, f"{title} ({first}-{last})", "", "", "no", "", "") for number, first, last, title in CHAPTERS
    ]
    codes = used_icd10_codes()
    for code in sorted(codes):
        category = code[:3]
        parent = category if category != code and category in codes else chapter_of(code)
        out.append((code, codes[code], "", parent, "no", "", ""))
    return table(ICD10_HEADER, out)


TABLES: dict[str, Callable[[], str]] = {
    "gb-t-2260-divisions.csv": divisions,
    "ws-t-483-500-document-types.csv": document_types,
    "nip-vaccines.csv": nip_vaccines,
    "ws-363-data-elements.csv": data_elements,
    "icd-10-diagnoses.csv": icd10,
}


def main() -> None:
    """Write the tables."""
    for name, derive in TABLES.items():
        text = derive()
        (DATA / name).write_text(text, encoding="utf-8")
        rows = text.count("\n") - sum(1 for line in text.splitlines() if line.startswith("#")) - 1
        print(f"{(DATA / name).relative_to(ROOT)}: {rows} codes")


if __name__ == "__main__":
    main()
