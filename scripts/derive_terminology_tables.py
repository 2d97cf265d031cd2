#!/usr/bin/env python3
"""Derive the terminology service's GB/T 2260 division table from the resident index's division table.

``src/rhip/empi/normalize/data/divisions.csv`` (written by scripts/derive_empi_tables.py, which names its
sources: cpca 0.5.5's adcodes.csv for the whole country, the 2023 statistical division codes for 绵阳市) holds
provinces, prefectures and counties by their significant digits (51, 5107, 510703). This script writes
``src/rhip/terminology/data/gb-t-2260-divisions.csv``: the same divisions with their 6-digit GB/T 2260 codes
(510000, 510700, 510703), each under the prefecture or, where the table has none (市辖区, 省直辖县级行政区划),
the province; a division the source notes as replaced gets ``valid_to`` at the end of that year. Townships and
villages (9- and 12-digit 统计用区划代码) are another code system and are left out.

    python scripts/derive_terminology_tables.py

The output is deterministic: re-running on the same input changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "rhip" / "empi" / "normalize" / "data" / "divisions.csv"
OUT = ROOT / "src" / "rhip" / "terminology" / "data" / "gb-t-2260-divisions.csv"
HEADER = """# name: GB/T 2260 中华人民共和国行政区划代码
# title: 行政区划代码 (administrative divisions: provinces, prefectures, counties; GB/T 2260)
# url: urn:rhip:cs:gb-t-2260
# valueset: urn:rhip:vs:gb-t-2260
# version: 2020-11 (cpca adcodes) with 绵阳市 from the 2023 statistical division codes
# source: src/rhip/empi/normalize/data/divisions.csv of this repository (its header names its sources: cpca 0.5.5
#   adcodes.csv, MIT, file dated 2020-11-07, for the country; the National Bureau of Statistics' 2023 statistical
#   division codes for 绵阳市), derived by scripts/derive_terminology_tables.py
# verified: no row was checked against the Ministry of Civil Affairs' published list; codes changed after 2020
#   outside 绵阳市 are not reflected. valid_to of a replaced division is the end of the year its source gives.
"""
COLUMNS = ["code", "display", "display_en", "parent", "verified", "valid_from", "valid_to"]


def six(code: str) -> str:
    """The 6-digit GB/T 2260 code of a division given by its significant digits."""
    return code.ljust(6, "0")


def main() -> None:
    """Write the table."""
    text = "".join(
        line for line in SOURCE.read_text(encoding="utf-8").splitlines(True) if not line.startswith("#")
    )
    rows = [r for r in csv.DictReader(io.StringIO(text)) if len(r["code"]) in (2, 4, 6)]
    present = {six(r["code"]) for r in rows}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
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
        writer.writerow([code, r["name"], "", parent, "no", "", valid_to])
    OUT.write_text(HEADER + out.getvalue(), encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(rows)} divisions")


if __name__ == "__main__":
    main()
