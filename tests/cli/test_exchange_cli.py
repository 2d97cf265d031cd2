"""``rhip exchange``: send a file over MLLP to a listener, list and show what it refused, replay after a fix."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from exchange.mllp.messages import a40, adt  # tests/ is on sys.path (its packages are top-level)
from rhip.bootstrap.container import build_platform
from rhip.bootstrap.settings import Settings
from rhip.cli.exchange import since_us
from rhip.exchange.hl7v2.intake.batcher import BatchingIntake
from rhip.exchange.hl7v2.pipeline import V2Pipeline
from rhip.exchange.mllp import MllpConfig, start_mllp
from rhip.exchange.mllp.framing import wrap
from rhip.exchange.rejects import RejectStore

from .test_cli import Cli, output

pytestmark = pytest.mark.integration


def _mounted() -> bool:
    from rhip.cli.main import app

    return any(group.name == "exchange" for group in app.registered_groups)


class ExchangeCli(Cli):
    """``rhip exchange …`` (through ``python -m rhip.cli.exchange`` until main mounts it)."""

    def exchange(self, *args: str):  # type: ignore[no-untyped-def]
        if _mounted():
            return self("exchange", *args)
        import subprocess

        return subprocess.run(
            [sys.executable, "-m", "rhip.cli.exchange", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


class Listener:
    """An MLLP listener without a master patient index (A40 merges fail), in a thread of its own."""

    def __init__(self, database_url: str) -> None:
        self.platform = build_platform(Settings(database_url=database_url, log_format="text"), empi=False)
        self.pipeline = V2Pipeline(self.platform.fhir, RejectStore(self.platform.db))
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.intake = BatchingIntake(self.pipeline)
        self.server = asyncio.run_coroutine_threadsafe(
            start_mllp(MllpConfig(port=0), self.intake), self.loop
        ).result(30)
        self.port = self.server.port

    def stop(self) -> None:
        async def stopping() -> None:
            await self.server.stop()
            await self.intake.close()

        asyncio.run_coroutine_threadsafe(stopping(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.platform.close()


@pytest.fixture
def listener(migrated: Cli) -> Iterator[Listener]:
    running = Listener(migrated.env["RHIP_DATABASE_URL"])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def rhip(migrated: Cli) -> ExchangeCli:
    cli = ExchangeCli(migrated.workdir, migrated.env["RHIP_DATABASE_URL"])
    cli.env["RHIP_EMPI__ONLINE"] = "true"
    return cli


def test_send_list_show_replay(rhip: ExchangeCli, listener: Listener, tmp_path: Path) -> None:
    stream = tmp_path / "his.mllp"
    stream.write_bytes(
        b"".join(
            wrap(m.encode("gbk"))
            for m in (
                adt("C1", "M1", charset=None),
                adt("C2", "M2", id_card="", charset=None),
                adt("C3", "", charset=None),  # no MRN: AE
                # no master patient index in this listener: AE (MSH-18 left empty: GBK bytes under a
                # UTF-8 label are refused with an AR since they are not valid UTF-8)
                a40("C4", "M1", "M2").replace("|UNICODE UTF-8\r", "|\r", 1),
            )
        )
    )
    sent = rhip.exchange("send", str(stream), "--port", str(listener.port))
    assert sent.returncode == 1, output(sent)
    assert "sent 4 message(s): AA 2, AE 2" in sent.stdout
    assert "C3" in sent.stdout and "PID-3" in sent.stdout

    listed = rhip.exchange("errors", "--json", "--since", "1h")
    assert listed.returncode == 0, output(listed)
    rows = [orjson.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    assert sorted(r["control_id"] for r in rows) == ["C3", "C4"]
    by_control = {r["control_id"]: r for r in rows}
    assert by_control["C4"]["reason_code"] == "RHIP-V2-0057" and by_control["C3"]["sender"] == "510725H01"

    shown = rhip.exchange("show", str(by_control["C3"]["id"]))
    assert shown.returncode == 0, output(shown)
    assert "PID|1||~513701195012285032" in shown.stdout
    assert "MSA|AE|C3" in shown.stdout and "张" in shown.stdout  # the GBK bytes shown as text

    # the platform has a master patient index: the merge now goes through
    replayed = rhip.exchange("replay", str(by_control["C4"]["id"]))
    assert replayed.returncode == 0, output(replayed)
    assert "accepted" in replayed.stdout
    again = rhip.exchange("replay", str(by_control["C3"]["id"]))
    assert again.returncode == 1 and "refused again" in again.stdout

    table = rhip.exchange("errors", "--all", "--channel", "mllp")
    assert table.returncode == 0, output(table)
    lines = {line.split("│")[5].strip(): line for line in table.stdout.splitlines() if line.count("│") > 8}
    assert "open" in lines["C3"] and "replayed" in lines["C4"] and "RHIP-V2-0057" in lines["C4"]
    store = RejectStore(listener.platform.db)
    assert [r.control_id for r in store.list()] == ["C3"]


def test_send_plain_text_re_encoded(rhip: ExchangeCli, listener: Listener, tmp_path: Path) -> None:
    plain = tmp_path / "one.hl7"
    plain.write_text(adt("P1", "M1", charset=None).replace("\r", "\n"), encoding="utf-8")
    sent = rhip.exchange("send", str(plain), "--port", str(listener.port), "--charset", "GBK")
    assert sent.returncode == 0, output(sent)
    assert "AA" in sent.stdout
    refused = rhip.exchange("send", str(plain), "--port", "1")
    assert refused.returncode == 1 and "could not talk" in output(refused)


def test_since() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 3, 8, tzinfo=UTC)
    assert since_us("2h", now) == int(datetime(2025, 3, 7, 22, tzinfo=UTC).timestamp() * 1_000_000)
    assert since_us("2025-03-08T08:00:00", now) == int(now.timestamp() * 1_000_000)  # Asia/Shanghai
