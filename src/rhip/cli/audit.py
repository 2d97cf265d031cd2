"""``rhip audit``: verify the hash chain of the audit log, search it, and list who viewed a record."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from rhip.db.engine import Database

audit_app = typer.Typer(help="Audit log (审计日志): verify its hash chain, search it", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


def _open() -> tuple[Database, ZoneInfo]:
    from rhip.cli.main import _database, _settings

    settings = _settings()
    return _database(settings), ZoneInfo(settings.timezone)


def _instant(text: str | None, zone: ZoneInfo, *, end: bool) -> int | None:
    """A FHIR date or dateTime as epoch µs: its start, or (``end``) just past its end."""
    from rhip.fhir.search.values import DateFormatError, date_range

    if text is None:
        return None
    try:
        low, high = date_range(text, zone)
    except DateFormatError as exc:
        console.print(f"[red]'{text}' is not a date (2025-03-01 or 2025-03-01T08:00:00+08:00)[/red]")
        raise typer.Exit(2) from exc
    return high + 1 if end else low


def _local(us: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(us / 1_000_000, zone).strftime("%Y-%m-%d %H:%M:%S")


def _anchors(values: list[str]) -> dict[int, str]:
    anchors: dict[int, str] = {}
    for value in values:
        seq, _, digest = value.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            console.print(f"[red]--anchor takes SEQ:HASH (64 hex digits), not '{value}'[/red]")
            raise typer.Exit(2)
        anchors[int(seq)] = digest
    return anchors


@audit_app.command()
def verify(
    algorithm: Annotated[
        str | None, typer.Option(help="also require every entry to be hashed with sm3 or sha256")
    ] = None,
    anchor: Annotated[
        list[str] | None, typer.Option(help="SEQ:HASH noted from an earlier run that must still hold")
    ] = None,
) -> None:
    """Check every entry's hash and the chain's links; name each altered, deleted or reordered entry."""
    from rhip.security.audit.verify import verify as verify_chain

    db, _ = _open()
    try:
        report = verify_chain(db, algorithm, _anchors(anchor or []))
    finally:
        db.dispose()
    for message in report.messages:
        out.print(message, markup=False, highlight=False)
    if not report.ok:
        console.print(f"[red]the audit log fails verification: {len(report.problems)} problem(s)[/red]")
        raise typer.Exit(1)
    if report.head_hash is None:
        out.print("the audit log is empty")
        return
    out.print(f"the audit log is intact: {report.head_seq} entries")
    out.print(f"head: {report.head_seq}:{report.head_hash}  (note it; verify --anchor checks it later)")


@audit_app.command()
def search(
    patient: Annotated[str | None, typer.Option(help="Patient id")] = None,
    user: Annotated[
        str | None, typer.Option(help="subject: user:<name>, client:<id>, platform:<process>")
    ] = None,
    institution: Annotated[str | None, typer.Option(help="institution code (医疗机构代码)")] = None,
    since: Annotated[str | None, typer.Option(help="from this date or time (inclusive)")] = None,
    until: Annotated[str | None, typer.Option(help="up to this date or time (inclusive)")] = None,
    action: Annotated[str | None, typer.Option(help="C R U D or E")] = None,
    outcome: Annotated[str | None, typer.Option(help="0 success, 4 refused, 8 or 12 failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Entries by patient, user, institution and time, newest first."""
    from rhip.security.audit.queries import search as find

    db, zone = _open()
    try:
        records = find(
            db,
            patient=patient,
            user=user,
            institution=institution,
            since_us=_instant(since, zone, end=False),
            until_us=_instant(until, zone, end=True),
            action=action,
            outcome=outcome,
            limit=limit,
        )
    finally:
        db.dispose()
    table = Table(title=f"{len(records)} audit entries (newest first)")
    for column in ("seq", "recorded", "action", "outcome", "interaction", "who", "role", "institution"):
        table.add_column(column)
    for column in ("purpose", "patients", "resources"):
        table.add_column(column)
    for r in records:
        resources = " ".join(r.entities[:3]) + (f" (+{len(r.entities) - 3})" if len(r.entities) > 3 else "")
        table.add_row(
            str(r.seq),
            _local(r.recorded_us, zone),
            r.action,
            r.outcome,
            r.subtype,
            r.subject,
            r.role or "",
            r.institution or "",
            r.purpose or "",
            " ".join(r.patients),
            resources,
        )
    out.print(table)


@audit_app.command("who-viewed")
def who_viewed(
    patient: Annotated[list[str], typer.Option(help="Patient id (repeat for a resident's children)")],
    exclude: Annotated[
        list[str] | None, typer.Option(help="subjects to leave out (the resident's own account)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 200,
) -> None:
    """Who read these Patients' records: when, from which institution, for what purpose."""
    from rhip.security.audit.queries import who_viewed as viewers

    db, zone = _open()
    try:
        rows = viewers(db, patient, exclude_subjects=exclude or (), limit=limit)
    finally:
        db.dispose()
    table = Table(title=f"{len(rows)} accesses (newest first)")
    for column in ("recorded", "who", "role", "institution", "purpose", "interaction", "patients"):
        table.add_column(column)
    for row in rows:
        recorded = datetime.fromisoformat(row["recorded"].replace("Z", "+00:00")).astimezone(zone)
        table.add_row(
            recorded.strftime("%Y-%m-%d %H:%M:%S"),
            row["who"],
            row["role"] or "",
            row["institution"] or "",
            row["purpose"] or "",
            row["interaction"],
            " ".join(row["patients"]),
        )
    out.print(table)
