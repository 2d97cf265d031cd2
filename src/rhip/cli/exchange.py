"""``rhip exchange``: what the doors refused (list, show, replay) and an MLLP sender for integrators."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from rhip.bootstrap.container import Platform
    from rhip.bootstrap.settings import Settings
    from rhip.db.engine import Database
    from rhip.exchange.rejects import Rejected, RejectStore

exchange_app = typer.Typer(
    help="Data exchange: refused messages and documents (errors, show, replay), sending HL7 v2 over MLLP",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console()
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _open() -> tuple[Platform, Settings]:
    from rhip.cli.main import _platform, _settings

    settings = _settings()
    return _platform(settings), settings


def _store() -> tuple[RejectStore, Database, Settings]:
    """The rejects store alone (listing and showing need no platform, which takes seconds to build)."""
    from rhip.cli.main import _database, _require_schema, _settings
    from rhip.exchange.rejects import RejectStore

    settings = _settings()
    _require_schema(settings)
    db = _database(settings)
    return RejectStore(db), db, settings


def since_us(text: str, now: datetime | None = None) -> int:
    """Microseconds since the epoch of ``--since``: a duration back from now (``24h``, ``7d``) or an ISO date/time."""
    now = now or datetime.now(UTC)
    found = _DURATION.match(text.strip())
    if found:
        moment = now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise typer.BadParameter("use a duration like 24h or 7d, or a date like 2025-03-08") from None
        if moment.tzinfo is None:
            from zoneinfo import ZoneInfo

            moment = moment.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return int(moment.timestamp() * 1_000_000)


def _when(us: int | None, zone: str) -> str:
    from zoneinfo import ZoneInfo

    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def _summary(r: Rejected) -> dict[str, object]:
    return {
        "id": r.id,
        "received_us": r.received_us,
        "channel": r.channel,
        "sender": r.sender,
        "application": r.application,
        "control_id": r.control_id,
        "content_type": r.content_type,
        "reason_code": r.reason_code,
        "reason": r.reason,
        "status": r.status,
        "note": r.note,
        "resolved_us": r.resolved_us,
    }


@exchange_app.command("errors")
def errors(
    channel: Annotated[str | None, typer.Option(help="mllp, hl7v3, cda or mhd")] = None,
    all_: Annotated[bool, typer.Option("--all", help="also those replayed or dismissed")] = False,
    since: Annotated[str | None, typer.Option(help="received since: 24h, 7d, or a date/time")] = None,
    limit: Annotated[int, typer.Option(help="most rows shown")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object a line")] = False,
) -> None:
    """List refused messages and documents, newest first (open ones unless --all)."""
    store, db, settings = _store()
    try:
        rows = store.list(
            status=None if all_ else "open",
            channel=channel,
            since_us=since_us(since) if since else None,
            limit=limit,
        )
    finally:
        db.dispose()
    if as_json:
        for r in rows:
            out.print(orjson.dumps(_summary(r)).decode(), soft_wrap=True, highlight=False)
        return
    table = Table(title=f"{len(rows)} {'refused' if all_ else 'open'} message(s)/document(s)")
    for column in ("id", "received", "channel", "sender", "control id", "code", "reason", "status"):
        table.add_column(column, overflow="fold")
    for r in rows:
        reason = r.reason if len(r.reason) <= 80 else r.reason[:79] + "…"
        table.add_row(
            str(r.id),
            _when(r.received_us, settings.timezone),
            r.channel,
            r.sender,
            r.control_id,
            r.reason_code,
            reason,
            r.status,
        )
    out.print(table)


def _text(raw: bytes) -> str:
    from rhip.exchange.hl7v2.charset import readable

    text = readable(raw)  # a reject's bytes may be no text at all (refused for that)
    return text.replace("\r\n", "\n").replace("\r", "\n")


@exchange_app.command("show")
def show(
    reject_id: Annotated[int, typer.Argument(help="the id `rhip exchange errors` shows")],
    as_json: Annotated[bool, typer.Option("--json", help="as JSON, with the bytes as text")] = False,
) -> None:
    """Show one refused message or document: why, when, from whom, its content and the answer it got."""
    from rhip.core.errors import ResourceNotFound

    store, db, settings = _store()
    try:
        r = store.get(reject_id)
    except ResourceNotFound as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    raw_text = _text(r.raw) if r.channel == "mllp" else r.raw.decode("utf-8", "replace")
    ack_text = _text(r.ack) if r.ack and r.channel == "mllp" else (r.ack or b"").decode("utf-8", "replace")
    if as_json:
        data = {**_summary(r), "raw": raw_text, "ack": ack_text}
        out.print(orjson.dumps(data).decode(), soft_wrap=True, highlight=False)
        return
    out.print(
        f"reject {r.id} ({r.status}) received {_when(r.received_us, settings.timezone)}", highlight=False
    )
    system = f" ({r.application})" if r.application else ""
    out.print(
        f"channel {r.channel}, sender {r.sender}{system}, control id {r.control_id or '-'}", highlight=False
    )
    out.print(f"reason {r.reason_code}: {r.reason}", highlight=False)
    if r.resolved_us:
        out.print(f"resolved {_when(r.resolved_us, settings.timezone)} {r.note}", highlight=False)
    out.print(f"\n--- content ({len(r.raw)} bytes) ---", highlight=False)
    out.print(raw_text, markup=False, highlight=False)
    if ack_text:
        out.print("--- answer ---", highlight=False)
        out.print(ack_text, markup=False, highlight=False)


@exchange_app.command("replay")
def replay(reject_id: Annotated[int, typer.Argument(help="the id `rhip exchange errors` shows")]) -> None:
    """Run a refused message or document through its door again (after a fix); marks it replayed when accepted."""
    from rhip.bootstrap.replay import ReplayNotAllowed, replay_reject
    from rhip.core.errors import RhipError

    platform, _ = _open()
    try:
        result = replay_reject(platform, reject_id, "rhip exchange replay")
    except ReplayNotAllowed as exc:
        console.print(f"[red]{exc.reason}[/red]", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    except RhipError as exc:
        console.print(f"[red]{exc.code}: {exc.message}[/red]")
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    if result.accepted:
        out.print(f"reject {reject_id} accepted ({result.detail}); marked replayed", highlight=False)
        return
    out.print(f"reject {reject_id} refused again ({result.detail})", highlight=False)
    raise typer.Exit(1)


@exchange_app.command("send")
def send(
    file: Annotated[Path, typer.Argument(help="MLLP frames, or messages one after another (each from MSH)")],
    host: Annotated[str, typer.Option(help="the receiver")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the receiver's MLLP port")] = 2575,
    charset: Annotated[
        str | None, typer.Option(help="re-encode the messages (read as UTF-8) in this charset, e.g. GBK")
    ] = None,
    tls: Annotated[bool, typer.Option(help="MLLP over TLS")] = False,
    ca: Annotated[Path | None, typer.Option(help="CA file to check the receiver's certificate")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each ACK")] = 30.0,
    quiet: Annotated[bool, typer.Option(help="print only the totals")] = False,
) -> None:
    """Send every message of FILE over MLLP, one at a time, and print each acknowledgement code."""
    from rhip.exchange.hl7v2.charset import UnknownCharset, codec_of
    from rhip.exchange.mllp.client import MllpClient, ack_summary, client_tls, split_messages

    if not file.is_file():
        console.print(f"[red]{file} is not a file[/red]")
        raise typer.Exit(2)
    messages = split_messages(file.read_bytes())
    if charset:
        try:
            codec = codec_of(charset)
        except UnknownCharset as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from exc
        messages = [m.decode("utf-8-sig").encode(codec) for m in messages]
    context = client_tls(str(ca) if ca else None) if tls else None

    async def run() -> Counter[str]:
        counts: Counter[str] = Counter()
        client = await MllpClient.connect(host, port, tls=context, server_hostname=host)
        try:
            for n, message in enumerate(messages, 1):
                started = time.perf_counter()
                ack = await client.send(message, timeout)
                code, control_id, detail = ack_summary(ack)
                counts[code] += 1
                if not quiet:
                    ms = (time.perf_counter() - started) * 1000
                    line = f"{n:6d}  {control_id or '-':24s} {code}  {ms:7.1f} ms  {detail}".rstrip()
                    out.print(line, markup=False, highlight=False)
        finally:
            await client.close()
        return counts

    try:
        counts = asyncio.run(run())
    except (OSError, TimeoutError) as exc:
        console.print(f"[red]could not talk to {host}:{port}: {type(exc).__name__} {exc}[/red]")
        raise typer.Exit(1) from exc
    totals = ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
    out.print(f"sent {len(messages)} message(s): {totals or 'none'}", highlight=False)
    if any(code != "AA" for code in counts):
        raise typer.Exit(1)


if __name__ == "__main__":
    exchange_app()
