"""``rhip registries``: CSV import and export of the care-services registries (机构人员注册, mCSD).

Both act as the operator through the platform's FHIR service (validated, authorised, audited), as the
portal's directory pages do with the same library (rhip.registries.csv_io).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

registries_app = typer.Typer(
    help="Care-services registries (机构人员注册, IHE mCSD): CSV import and export", no_args_is_help=True
)
console = Console(stderr=True)
out = Console()
TYPES = ("Organization", "Practitioner", "Location", "HealthcareService")
TypeOption = Annotated[str, typer.Option("--type", "-t", help=", ".join(TYPES))]


def _checked(resource_type: str) -> str:
    if resource_type not in TYPES:
        console.print(f"[red]--type is one of {', '.join(TYPES)}, not {resource_type!r}[/red]")
        raise typer.Exit(2)
    return resource_type


@registries_app.command("import")
def import_csv(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a UTF-8 CSV file")],
    resource_type: TypeOption = "Organization",
) -> None:
    """Create or update one resource per row (keyed by its code or licence); a result per row.

    Exits with 1 when any row was refused (the others are kept), 2 when the file cannot be read at all.
    """
    from rhip.cli.main import _platform, _settings
    from rhip.registries.csv_io import FileProblem, import_rows, read_rows
    from rhip.registries.fhir_port import calling
    from rhip.registries.reasons import reason

    rtype = _checked(resource_type)
    try:
        rows = read_rows(path.read_bytes(), rtype)
    except FileProblem as problem:
        why = reason(problem.key, "", problem.values)
        console.print(f"[red]{path}: {why}[/red]")
        raise typer.Exit(2) from problem
    platform = _platform(_settings())
    try:
        results = import_rows(calling(platform.fhir), rtype, rows)
    finally:
        platform.close()
    table = Table("line", "key", "result", "resource or reason")
    for r in results:
        detail = r.resource if r.outcome != "refused" else reason(r.reason_key, r.reason)
        table.add_row(str(r.line), r.key, r.outcome, detail)
    out.print(table)
    counts = {o: sum(r.outcome == o for r in results) for o in ("created", "updated", "refused")}
    console.print(", ".join(f"{n} {o}" for o, n in counts.items()))
    if counts["refused"]:
        raise typer.Exit(1)


@registries_app.command("export")
def export_csv(
    resource_type: TypeOption = "Organization",
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="file to write (default: stdout)")
    ] = None,
) -> None:
    """Every resource of the type as CSV with the import's columns (UTF-8 with a byte-order mark)."""
    from rhip.cli.main import _platform, _settings
    from rhip.registries.csv_io import export_rows
    from rhip.registries.fhir_port import FhirRefused, calling

    rtype = _checked(resource_type)
    platform = _platform(_settings())
    try:
        data = export_rows(calling(platform.fhir), rtype)
    except FhirRefused as exc:
        console.print(f"[red]{exc.detail or exc.key}[/red]")
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
        rows = data.count(b"\n") - 1  # less the header line
        console.print(f"{output}: {rows} rows")


@registries_app.command("check")
def check(resource_type: TypeOption = "Organization") -> None:
    """List the stored Organizations or Practitioners that break the identifier rules (exit 1 if any).

    Writes are checked as they come; this finds what was stored before, for the operator to correct.
    """
    from rhip.cli.main import _platform, _settings
    from rhip.registries.fhir_port import calling
    from rhip.registries.rules import stored_problems

    rtype = _checked(resource_type)
    if rtype not in ("Organization", "Practitioner"):
        console.print("[red]the rules concern Organization and Practitioner[/red]")
        raise typer.Exit(2)
    platform = _platform(_settings())
    try:
        found = list(stored_problems(calling(platform.fhir), rtype))
    finally:
        platform.close()
    table = Table("resource", "problem")
    for rid, problems in found:
        for problem in problems:
            table.add_row(f"{rtype}/{rid}", problem)
    if found:
        out.print(table)
    console.print(f"{len(found)} {rtype} resources break a rule")
    if found:
        raise typer.Exit(1)
