"""The data-quality page (数据质控): the region's figures as the report gives them, for administrators only."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from starlette.testclient import TestClient

from .conftest import PortalSite

Factory = Callable[[str | None], TestClient]


@pytest.fixture(scope="module")
def figures(portal_site: PortalSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The region scored by `rhip quality score`, and this month's report as the CLI writes it."""
    out = tmp_path_factory.mktemp("quality") / "region.json"
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    for args in (("score",), ("report", "--month", month, "--out", str(out))):
        done = subprocess.run(
            [sys.executable, "-m", "rhip.cli.main", "quality", *args],
            env=portal_site.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    loaded: dict[str, object] = orjson.loads(out.read_bytes())
    return loaded


def cells(html: str, table_id: str) -> list[list[str]]:
    found = re.search(rf'<table id="{table_id}".*?</table>', html, re.DOTALL)
    assert found, f"no table#{table_id}"
    rows = re.findall(r"<tr[^>]*>.*?</tr>", found.group(0), re.DOTALL)[1:]
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", r, re.DOTALL)]
        for r in rows
    ]


def test_an_administrator_sees_the_regions_figures(portal_app: Factory, figures: dict[str, object]) -> None:
    page = portal_app("demo-admin").get("/portal/admin/quality")
    assert page.status_code == 200
    assert "数据质控" in page.text
    resources = re.search(r'id="total-resources">(\d+)<', page.text)
    assert resources and int(resources.group(1)) == figures["resources"] > 0
    families = figures["families"]
    assert isinstance(families, list)
    shown = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in cells(page.text, "quality-families")}
    names = {"completeness": "完整性", "validity": "有效性", "consistency": "一致性", "timeliness": "及时性"}
    assert shown == {names[f["family"]]: (f["checked"], f["passed"], f["failed"]) for f in families}
    rules = figures["rules"]
    assert isinstance(rules, list)
    assert len(cells(page.text, "quality-rules")) == len(rules)


def test_others_may_not_and_bad_months_are_refused(portal_app: Factory) -> None:
    assert portal_app("demo-doctor").get("/portal/admin/quality").status_code == 403
    assert portal_app("demo-stats").get("/portal/admin/quality").status_code == 403
    admin = portal_app("demo-admin")
    bad = admin.get("/portal/admin/quality?month=2026-13")
    assert bad.status_code == 400
    empty = admin.get("/portal/admin/quality?month=1999-01")
    assert empty.status_code == 200 and "本期没有数据" in empty.text
