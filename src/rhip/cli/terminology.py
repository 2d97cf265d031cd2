"""``rhip terminology``: the code tables the platform holds, and their CodeSystems and ValueSets in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

terminology_app = typer.Typer(
    help="Terminology (术语与字典): code tables, published as CodeSystem and ValueSet; local dictionaries",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console()


@terminology_app.command("list")
def list_tables() -> None:
    """The code tables the platform reads at start (shipped, then RHIP_TERMINOLOGY__TABLES_DIR's)."""
    from rhip.bootstrap.container import code_tables
    from rhip.cli.main import _settings
    from rhip.terminology.codesystems import CodeTableError

    try:
        tables = code_tables(_settings())
    except CodeTableError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    table = Table("url", "name", "version", "codes", "unverified", "value set")
    for cs in tables:
        unverified = sum(not c.verified for c in cs.concepts)
        table.add_row(cs.url, cs.name, cs.version, str(len(cs.concepts)), str(unverified), cs.valueset or "")
    out.print(table)


@terminology_app.command("load")
def load() -> None:
    """Put every code table in the store as a CodeSystem and a ValueSet (a table unchanged adds no version)."""
    from rhip.bootstrap.container import code_tables
    from rhip.cli.main import _platform, _settings
    from rhip.core.errors import RhipError
    from rhip.terminology.codesystems import CodeTableError
    from rhip.terminology.publish import publish

    settings = _settings()
    try:
        tables = code_tables(settings)
    except CodeTableError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    platform = _platform(settings)
    try:
        done = publish(platform.fhir, tables)
    except RhipError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    table = Table("resource", "url", "version", "done")
    for p in done:
        table.add_row(f"{p.resource_type}/{p.id}", p.url, p.version, p.action)
    out.print(table)


@terminology_app.command("map")
def load_map(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="a local dictionary: .csv or ConceptMap .json")
    ],
) -> None:
    """Register an institution's local dictionary (本地字典对照) as a ConceptMap in the store.

    Loading the same file again adds no version; a changed file adds one. From then on, incoming data with
    the dictionary's local codes gets the standard codes beside them.
    """
    from rhip.cli.main import _platform, _settings
    from rhip.core.errors import RhipError
    from rhip.terminology.conceptmaps import ConceptMapError, concept_map_from_fhir, parse_concept_map_csv
    from rhip.terminology.publish import publish_one

    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            concept_map = concept_map_from_fhir(orjson.loads(text))
        else:
            concept_map = parse_concept_map_csv(text, str(path))
    except (ConceptMapError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        console.print(f"[red]{path}: {exc}[/red]")
        raise typer.Exit(2) from exc
    platform = _platform(_settings())
    try:
        done = publish_one(platform.fhir, concept_map.to_fhir())
    except RhipError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    mappings = sum(len(t) for t in concept_map.elements.values())
    out.print(f"ConceptMap/{done.id} {done.url}|{done.version}: {done.action} ({mappings} mappings)")
