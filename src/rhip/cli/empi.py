"""``rhip empi``: train the match model, relink, work the review queue, export links."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from rhip.bootstrap.container import Platform
    from rhip.empi.service import EmpiService

empi_app = typer.Typer(
    help="Resident index (EMPI, 居民主索引): model, relinking, review, export", no_args_is_help=True
)
console = Console(stderr=True)


def _open() -> tuple[Platform, EmpiService]:
    from rhip.cli.main import _platform, _settings

    platform = _platform(_settings())
    if platform.empi is None:
        console.print("[red]the EMPI is not configured[/red]")
        raise typer.Exit(2)
    return platform, platform.empi


def _patients(platform: Platform):  # type: ignore[no-untyped-def]
    from rhip.fhir.bulk import export_resources

    assert platform.parser is not None
    return export_resources(platform.repository, platform.parser, ["Patient"])


@empi_app.command()
def train(
    out: Annotated[Path | None, typer.Option(help="also write the model document here")] = None,
    max_records: Annotated[int, typer.Option(help="records sampled for training")] = 300_000,
    profile: Annotated[str, typer.Option(help="cn (Chinese residents) or latin")] = "cn",
    version: Annotated[str | None, typer.Option(help="model version (default: the time)")] = None,
) -> None:
    """Learn match weights (EM) from the records in the store; store the model and make it active."""
    from rhip.empi import repository as sql
    from rhip.empi.relink import load
    from rhip.empi.training import TrainingOptions
    from rhip.empi.training import train as learn

    platform, service = _open()
    try:
        loaded = load(service, _patients(platform))
        if loaded:
            console.print(f"normalised {loaded:,} Patients the index did not hold")
        with service.db.read() as conn:
            records = [r.decoded() for r in sql.all_records(conn)]
        if len(records) < 2:
            console.print("[red]the store holds fewer than two Patients: nothing to learn from[/red]")
            raise typer.Exit(1)
        model = learn(
            records, TrainingOptions(profile=profile, max_records=max_records), version, console.print
        )
        service.use_model(model)
        if out is not None:
            out.write_bytes(model.to_json())
        table = Table(
            title=f"model {model.version} ({model.trained.get('records')} records, prior {model.prior:.3g})"
        )
        for column in ("comparison", "level", "m", "u", "weight"):
            table.add_column(column)
        for name, levels in model.levels.items():
            for lv in levels:
                table.add_row(name, lv.label, f"{lv.m:.4f}", f"{lv.u:.6f}", f"{lv.weight:+.2f}")
        console.print(table)
        console.print("run `rhip empi relink` to apply it to the links already made")
    finally:
        platform.close()


@empi_app.command()
def relink(
    workers: Annotated[
        int, typer.Option(help="scoring processes (0: one per core; 1 is enough below ~10 million records)")
    ] = 1,
    load: Annotated[
        bool, typer.Option(help="first normalise Patients the index lacks or holds at an older version")
    ] = True,
) -> None:
    """Re-evaluate every link with the active model; manual decisions are kept."""
    from rhip.empi.consumer import skip_to_end
    from rhip.empi.relink import relink as run

    platform, service = _open()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def advance(phase: str, n: int, total: int | None) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(phase, total=total)
                progress.advance(tasks[phase], n)

            summary = run(service, _patients(platform) if load else None, workers=workers, progress=advance)
        skip_to_end(service)
        console.print(
            f"{summary.records:,} records ({summary.loaded:,} newly loaded), {summary.pairs_scored:,} pairs scored, "
            f"{summary.masters:,} masters, {summary.changed_links:,} links changed, {summary.review:,} for review; "
            f"seconds {summary.seconds}"
        )
    finally:
        platform.close()


@empi_app.command()
def sync() -> None:
    """Link Patients the store committed that the index has not seen (from the outbox)."""
    from rhip.empi.consumer import catch_up

    platform, service = _open()
    try:
        console.print(f"processed {catch_up(service):,} Patients")
    finally:
        platform.close()


@empi_app.command()
def review(
    show: Annotated[int | None, typer.Option(help="show one item with both sides")] = None,
    decide: Annotated[str | None, typer.Option(help="link | separate (with --show ID and --actor)")] = None,
    actor: Annotated[str | None, typer.Option(help="who decides")] = None,
    status: Annotated[str, typer.Option(help="open | linked | separate | stale")] = "open",
    limit: Annotated[int, typer.Option(help="items listed")] = 20,
) -> None:
    """List the review queue (审核队列), show an item, or decide it."""
    from rhip.core.errors import RhipError
    from rhip.empi.manual import decide_review
    from rhip.empi.queries import review_item, review_list

    platform, service = _open()
    try:
        if show is not None and decide:
            result = decide_review(service, show, decide, actor or "")
            console.print(f"decided: {result}")
        elif show is not None:
            typer.echo(orjson.dumps(review_item(service, show), option=orjson.OPT_INDENT_2).decode())
        else:
            items, total = review_list(service, status, limit, 0)
            table = Table(title=f"{total} {status} item(s)")
            for column in ("id", "patient", "candidate master", "probability", "reason"):
                table.add_column(column)
            for item in items:
                table.add_row(
                    str(item["id"]),
                    item["patient"],
                    item["master"],
                    f"{item['probability']:.3f}",
                    item["reason"],
                )
            console.print(table)
    except RhipError as error:
        console.print(f"[red]{error.code} {error.message}[/red]")
        raise typer.Exit(1) from error
    finally:
        platform.close()


@empi_app.command()
def export(out: Annotated[Path, typer.Option(help="the CSV file to write")]) -> None:
    """Write links.csv: patient_id,source_system,source_value,master_id (a row per Patient and identifier)."""
    from rhip.empi import repository as sql

    platform, service = _open()
    rows = 0
    try:
        with service.db.read() as conn, out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["patient_id", "source_system", "source_value", "master_id"])
            for record in sql.all_records(conn):
                identifiers = record.decoded().identifiers or (("", ""),)
                for system, value in identifiers:
                    writer.writerow([record.patient_id, system, value, record.master_id])
                    rows += 1
    finally:
        platform.close()
    console.print(f"wrote {rows:,} rows to {out}")
