"""``rhip quality``: score what the store holds (catching up with the outbox) and write the monthly report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

if TYPE_CHECKING:
    from rhip.bootstrap.container import Platform
    from rhip.quality.service import QualityService

quality_app = typer.Typer(
    help="Data quality (数据质控): completeness, validity, consistency and timeliness of incoming data",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console()


def _service() -> tuple[Platform, QualityService]:
    from rhip.bootstrap.quality import build_quality
    from rhip.cli.main import _platform, _settings
    from rhip.quality.ruleset import RuleFileError

    platform = _platform(_settings())
    try:
        return platform, build_quality(platform)
    except RuleFileError as exc:
        platform.close()
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@quality_app.command("score")
def score() -> None:
    """Score every resource version stored since the last run (what `rhip serve` does as data arrives)."""
    platform, service = _service()
    try:
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
            task = progress.add_task("score", total=None)
            done = service.catch_up(lambda n: progress.advance(task, n))
    finally:
        platform.close()
    console.print(f"read {done.events:,} outbox events, scored {done.scored:,} resource versions")


@quality_app.command("report")
def report(
    month: Annotated[str, typer.Option(help="the month, YYYY-MM (days in the platform's time zone)")],
    institution: Annotated[
        str | None, typer.Option(help="institution code (医疗机构代码); omitted: the whole region")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="write the report here: .xlsx (spreadsheet) or .json")
    ] = None,
) -> None:
    """The quality figures of a month: per family and rule, per day, worst fields, delays, examples."""
    from rhip.core.errors import RhipError
    from rhip.quality.report import month_period
    from rhip.quality.xlsx import write_report

    try:
        period = month_period(month, institution)
    except RhipError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    if output is not None and output.suffix.lower() not in (".xlsx", ".json"):
        console.print("[red]--out must name a .xlsx or .json file[/red]")
        raise typer.Exit(2)
    platform, service = _service()
    try:
        figures = service.report(period)
    finally:
        platform.close()
    if output is not None:
        if output.suffix.lower() == ".json":
            output.write_bytes(orjson.dumps(figures.as_dict(), option=orjson.OPT_INDENT_2))
        else:
            write_report(figures, output)
        console.print(f"wrote {output}")
    data = figures.as_dict()
    table = Table(title=f"{data['scope']} {period.first} – {period.last}: {data['resources']:,} resources")
    for header in ("family", "checked", "passed", "failed", "rate"):
        table.add_column(header, justify="left" if header == "family" else "right")
    for f in data["families"]:
        shown = "" if f["rate"] is None else f"{f['rate']:.2%}"
        table.add_row(f["family"], f"{f['checked']:,}", f"{f['passed']:,}", f"{f['failed']:,}", shown)
    out.print(table)
