"""The ``rhip`` command line: serve, database migrations, import and export, the sample region."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from rhip import __version__
from rhip.bootstrap.logging import configure_logging
from rhip.bootstrap.settings import Settings
from rhip.cli.accounts import clients_app, tokens_app, users_app
from rhip.cli.audit import audit_app
from rhip.cli.demo import demo_accounts
from rhip.cli.empi import empi_app
from rhip.cli.exchange import exchange_app
from rhip.cli.keys import keys_app
from rhip.cli.quality import quality_app
from rhip.cli.registries import registries_app
from rhip.cli.terminology import terminology_app

if TYPE_CHECKING:
    from rhip.bootstrap.container import Platform
    from rhip.db.engine import Database
    from rhip.documents.bulk import ImportCounts
    from rhip.fhir.bulk import ImportSummary

# The platform is imported inside the commands that use it: `rhip serve` stays a small supervisor process
# (its workers import the platform themselves), and `rhip version` answers at once.

app = typer.Typer(
    help="rhip: regional health information platform (区域全民健康信息平台)", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(empi_app, name="empi")
app.add_typer(exchange_app, name="exchange")
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(terminology_app, name="terminology")
app.add_typer(registries_app, name="registries")
app.add_typer(quality_app, name="quality")
app.command("demo-accounts")(demo_accounts)
console = Console(stderr=True)
# Commands that serve others: each request, message or job they handle names its own caller.
SERVER_COMMANDS = frozenset({"serve"})


@app.callback()
def _operator(ctx: typer.Context) -> None:
    """rhip: regional health information platform (区域全民健康信息平台)."""
    if ctx.invoked_subcommand not in SERVER_COMMANDS:
        # An operator at the server's command line acts as the platform itself (audited as cli:<user>).
        import getpass

        from rhip.security.context import act_for_process
        from rhip.security.principal import platform_principal

        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no login name in some containers
            user = "operator"
        act_for_process(platform_principal(f"cli:{user}"))


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _database(settings: Settings) -> Database:
    from rhip.bootstrap.container import database

    return database(settings)


def _platform(settings: Settings, *, empi_online: bool | None = None) -> Platform:
    from rhip.bootstrap.container import SchemaOutOfDate, build_platform
    from rhip.bootstrap.runtime import settle_heap

    try:
        platform = build_platform(settings, empi_online=empi_online)
    except SchemaOutOfDate as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    settle_heap()
    return platform


def _require_schema(settings: Settings) -> None:
    """Refuse to start on a database whose schema is not current (without loading the platform)."""
    from rhip.db.migrate import current_revision, head_revision

    db = _database(settings)
    try:
        current, head = current_revision(db.engine), head_revision()
    finally:
        db.dispose()
    if current != head:
        console.print(
            f"[red]database schema is at {current or 'nothing'}, the code needs {head}: run `rhip db upgrade`[/red]"
        )
        raise typer.Exit(2)


@app.command()
def version() -> None:
    """Print the versions of rhip, FHIR and the database schema."""
    from rhip.db.migrate import current_revision, head_revision

    settings = _settings()
    db = _database(settings)
    try:
        schema = current_revision(db.engine) or "empty"
    except Exception as exc:  # the version command must work even when the database is unreachable
        schema = f"unavailable ({type(exc).__name__})"
    finally:
        db.dispose()
    typer.echo(f"rhip {__version__}\nFHIR 4.0.1\nschema {schema} (code needs {head_revision()})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (creates it when empty)."""
    from rhip.db.migrate import upgrade

    settings = _settings()
    db = _database(settings)
    try:
        reached = upgrade(db.engine)
    finally:
        db.dispose()
    typer.echo(f"database at revision {reached}")


@db_app.command("analyze")
def db_analyze() -> None:
    """Refresh database statistics after a bulk load (VACUUM ANALYZE on PostgreSQL)."""
    settings = _settings()
    db = _database(settings)
    try:
        typer.echo(f"done: {db.analyze()}")
    finally:
        db.dispose()


@db_app.command("reindex")
def db_reindex(
    resource_type: Annotated[
        list[str] | None, typer.Option("--type", help="a resource type to reindex (repeat for several)")
    ] = None,
    all_types: Annotated[bool, typer.Option("--all", help="every resource type the store holds")] = False,
) -> None:
    """Rebuild the search index of stored resources (after search parameters were added: docs/registries.md)."""
    from rhip.bootstrap.container import reindex_store
    from rhip.core.errors import RhipError

    if bool(resource_type) == all_types:
        console.print("[red]name the types with --type, or give --all[/red]")
        raise typer.Exit(2)
    platform = _platform(_settings())
    try:
        with console.status("reindexing") as status:
            totals: Counter[str] = Counter()

            def shown(rtype: str, count: int) -> None:
                totals[rtype] += count
                status.update(f"reindexing {rtype}: {totals[rtype]:,}")

            done = reindex_store(platform, None if all_types else resource_type, shown)
    except RhipError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        platform.close()
    for rtype, count in done.items():
        typer.echo(f"{rtype}: {count:,} reindexed")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from rhip.db.migrate import current_revision

    settings = _settings()
    db = _database(settings)
    try:
        typer.echo(current_revision(db.engine) or "empty")
    finally:
        db.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8080)")] = None,
    workers: Annotated[int | None, typer.Option(help="worker processes")] = None,
) -> None:
    """Serve the platform over HTTP (FHIR at /fhir, /healthz, /readyz, /metrics)."""
    from rhip.cli.supervisor import MALLOC_ARENAS

    # The server processes read their settings from the environment, so options go there.
    if host:
        os.environ["RHIP_SERVER__HOST"] = host
    if port:
        os.environ["RHIP_SERVER__PORT"] = str(port)
    if workers:
        os.environ["RHIP_SERVER__WORKERS"] = str(workers)
    os.environ.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    settings = _settings()
    _require_schema(settings)
    scheme = "https" if settings.server.tls_cert else "http"
    root = f"{scheme}://{settings.server.host}:{settings.server.port}"
    console.print(
        f"rhip {__version__} serving the portal on {root}/portal/ and FHIR on {root}/fhir "
        f"({settings.database_url.split('://', 1)[0]}, {settings.server.workers} worker(s))"
    )
    mllp = settings.exchange.mllp
    if mllp.enabled:
        tls = " over TLS" if mllp.tls_cert else ""
        console.print(f"HL7 v2 over MLLP{tls} on {mllp.host}:{mllp.port}; HL7 v3 at /hl7v3/")
    sys.stdout.flush()
    sys.stderr.flush()
    # A fresh interpreter whose main module is lean (see rhip.cli.supervisor); same pid, so process
    # managers and signals see no difference.
    # -P: the working directory is not put on sys.path (a stray uvicorn.py there would be imported).
    os.execv(sys.executable, [sys.executable, "-P", "-m", "rhip.cli.supervisor"])  # noqa: S606 -- our own module


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="an NDJSON or JSON file, or a folder of them")],
    batch_size: Annotated[int, typer.Option(help="resources per database transaction")] = 500,
    jobs: Annotated[int, typer.Option(help="processes importing a folder's files side by side")] = 1,
    only: Annotated[
        list[Path] | None, typer.Option(hidden=True, help="import just these files of the folder")
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(hidden=True, help="write the summary here instead of printing it")
    ] = None,
    link: Annotated[
        bool, typer.Option(help="link the imported Patients in the resident index (EMPI) afterwards")
    ] = True,
    exclusive: Annotated[
        bool,
        typer.Option(
            help="CDA, opt-in: new records as plain creates (no ifNoneExist), faster. Only when nothing else "
            "registers documents of these institutions meanwhile, e.g. a backfill into a platform not yet "
            "taking traffic; with --jobs, files are shared among the processes by size (each zip whole, in "
            "one process), so each institution's documents must be in one file"
        ),
    ] = False,
    allow_refused: Annotated[
        bool,
        typer.Option(
            "--allow-refused",
            help="exit 0 even when some items were refused (they are reported; refused documents are kept "
            "for replay: rhip exchange errors)",
        ),
    ] = False,
) -> None:
    """Import FHIR resources (NDJSON, resources, Bundles) or CDA documents (.xml, folders, zips of them),
    reporting what was rejected and why (exit status 1 when anything was, unless --allow-refused)."""
    from rhip.documents.bulk import DOCUMENT_SUFFIXES, document_files
    from rhip.fhir.bulk import ImportSummary, importable_files

    if not path.exists():
        console.print(f"[red]{path} does not exist[/red]")
        raise typer.Exit(2)
    # A .xml or .zip file, or a folder holding such files and no FHIR ones, is a delivery of CDA documents.
    cda = path.suffix.lower() in DOCUMENT_SUFFIXES if path.is_file() else not importable_files(path)
    if cda and document_files(path):
        _import_cda(
            path,
            link=link,
            exclusive=exclusive,
            jobs=jobs,
            only=only,
            summary_json=summary_json,
            allow_refused=allow_refused,
        )
        return
    files = list(only) if only else importable_files(path)
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=summary_json is not None,
    ) as progress:
        side_by_side = jobs > 1 and len(files) > 1
        # Side by side, the children report only when they finish: the bar runs without a total till then.
        task = progress.add_task(
            "import", total=None if side_by_side else sum(f.stat().st_size for f in files)
        )
        if side_by_side:
            summary = _import_side_by_side(path, files, jobs, batch_size, lambda n: progress.advance(task, n))
        else:
            summary = ImportSummary()
            _import_files(files, batch_size, summary, lambda n: progress.advance(task, n))
    if summary_json is not None:
        rejected = [vars(r) for r in summary.rejected]
        summary_json.write_bytes(
            orjson.dumps({"imported": summary.imported, "files": summary.files, "rejected": rejected})
        )
        return
    table = Table(title=f"Imported {summary.total_imported} resources from {summary.files} file(s)")
    table.add_column("resource type")
    table.add_column("imported", justify="right")
    for rtype, n in sorted(summary.imported.items()):
        table.add_row(rtype, str(n))
    console.print(table)
    if link and summary.imported.get("Patient"):
        _link_imported(summary.imported["Patient"])
    if summary.rejected:
        reasons = Counter(f"{r.code} {r.reason}" for r in summary.rejected)
        console.print(f"[yellow]{len(summary.rejected)} rejected[/yellow]; most common reasons:")
        for reason, n in reasons.most_common(10):
            console.print(f"  {n:6d}  {reason}")
        for r in summary.rejected[:20]:
            console.print(f"  {r.source}:{r.line} {r.resource_type}: {r.code} {r.reason}")
        if not allow_refused:
            raise typer.Exit(1)


def _import_files(
    files: list[Path], batch_size: int, summary: ImportSummary, advance: Callable[[int], None]
) -> None:
    """Import files in this process (Patients are linked by the EMPI afterwards, in batch)."""
    from rhip.fhir.bulk import BulkImporter

    platform = _platform(_settings(), empi_online=False)
    try:
        importer = BulkImporter(platform.fhir, platform.repository, batch_size)
        for file in files:
            summary.files += 1
            with file.open("rb") as fh:
                importer.import_stream(fh, str(file), summary, advance)
        if summary.total_imported:
            platform.db.analyze()  # the planner's statistics should know about what just arrived
    finally:
        platform.close()


def _import_cda(
    path: Path,
    *,
    link: bool,
    exclusive: bool,
    jobs: int,
    only: list[Path] | None,
    summary_json: Path | None,
    allow_refused: bool = False,
) -> None:
    """Register the CDA documents of a folder, zip or .xml file (50 per transaction, ``jobs`` processes)."""
    from rhip.documents.bulk import ImportCounts, document_files

    files = list(only) if only else document_files(path)
    counts = ImportCounts()
    with Progress(
        TextColumn("importing documents"), BarColumn(), console=console, disable=summary_json is not None
    ) as progress:
        task = progress.add_task("cda", total=None)
        if jobs > 1 and len(files) > 1:
            _import_cda_side_by_side(path, files, jobs, exclusive, counts)
        else:
            _import_cda_files(files, exclusive, counts, lambda n: progress.advance(task, n))
    if summary_json is not None:
        summary_json.write_bytes(orjson.dumps({**vars(counts), "patient_ids": sorted(counts.patient_ids)}))
        return
    console.print(
        f"{counts.registered} of {counts.documents} documents registered from {counts.files} file(s), "
        f"{counts.extracted} resources extracted"
    )
    if link and counts.patient_ids:
        _link_imported(len(counts.patient_ids))
    if counts.rejected:
        console.print(f"[yellow]{counts.rejected} refused[/yellow]; most common reasons:")
        for code, n in counts.reasons.most_common(10):
            console.print(f"  {n:6d}  {code}")
        console.print("refused documents are kept: rhip exchange errors --channel cda")
        if not allow_refused:
            raise typer.Exit(1)


def _import_cda_files(
    files: list[Path], exclusive: bool, counts: ImportCounts, advance: Callable[[int], None]
) -> None:
    """Register documents in this process (their Patients are linked afterwards, in batch)."""
    from rhip.documents.bulk import import_documents
    from rhip.documents.service import DocumentService, RegistryConfig

    settings = _settings()
    platform = _platform(settings, empi_online=False)
    try:
        assert platform.exchange is not None
        config = RegistryConfig(
            max_document_bytes=settings.exchange.max_xml_mb * 1024 * 1024,
            timezone=settings.timezone,
            exclusive=exclusive,
        )
        service = DocumentService(platform.fhir, config, rejects=platform.exchange.rejects)
        done = import_documents(service, files, progress=advance)
        if done.registered:
            platform.db.analyze()
    finally:
        platform.close()
    _add_counts(counts, vars(done))


def _add_counts(counts: ImportCounts, part: dict[str, Any]) -> None:
    for key in ("files", "documents", "registered", "extracted", "rejected"):
        setattr(counts, key, getattr(counts, key) + int(part[key]))
    counts.patient_ids.update(part["patient_ids"])
    counts.reasons.update(part["reasons"])


def _import_cda_side_by_side(
    path: Path, files: list[Path], jobs: int, exclusive: bool, counts: ImportCounts
) -> None:
    """Share the files (zips: usually one institution each) among ``jobs`` child processes and add up."""
    import subprocess
    import tempfile

    groups = _share_out(files, jobs)
    with tempfile.TemporaryDirectory(prefix="rhip-import-") as tmp:
        children = []
        for k, group in enumerate(g for g in groups if g):
            out = Path(tmp) / f"{k}.json"
            args = [sys.executable, "-m", "rhip.cli.main", "import", str(path), "--no-link"]
            args += ["--exclusive" if exclusive else "--no-exclusive", "--summary-json", str(out)]
            args += [a for f in group for a in ("--only", str(f))]
            children.append((subprocess.Popen(args), out))  # noqa: S603
        statuses = [child.wait() for child, _ in children]
        for status, (_child, out) in zip(statuses, children, strict=True):
            if status != 0 or not out.exists():
                console.print(f"[red]an import process failed (exit status {status})[/red]")
                raise typer.Exit(1)
            _add_counts(counts, orjson.loads(out.read_bytes()))


def _link_imported(patients: int) -> None:
    """Link imported Patients: one by one from the outbox when few, else a batch relink."""
    from rhip.empi.consumer import catch_up, skip_to_end
    from rhip.empi.relink import relink

    platform = _platform(_settings())
    try:
        assert platform.empi is not None and platform.parser is not None
        if patients <= 1000:
            console.print(f"linked {catch_up(platform.empi):,} Patients in the resident index")
            return
        from rhip.fhir.bulk import export_resources

        summary = relink(platform.empi, export_resources(platform.repository, platform.parser, ["Patient"]))
        skip_to_end(platform.empi)
        console.print(
            f"resident index: {summary.records:,} records, {summary.masters:,} persons, "
            f"{summary.review:,} for review ({summary.seconds['total']:.1f} s)"
        )
    finally:
        platform.close()


def _share_out(files: list[Path], jobs: int) -> list[list[Path]]:
    """The files in ``jobs`` groups of about equal size: largest first, each to the least loaded group."""
    groups: list[list[Path]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for file in sorted(files, key=lambda f: -f.stat().st_size):
        k = loads.index(min(loads))
        groups[k].append(file)
        loads[k] += file.stat().st_size
    return groups


def _import_side_by_side(
    path: Path, files: list[Path], jobs: int, batch_size: int, advance: Callable[[int], None]
) -> ImportSummary:
    """Share the files among ``jobs`` child processes (largest first, to the least loaded) and merge."""
    import subprocess
    import tempfile

    from rhip.fhir.bulk import ImportSummary, Rejection

    groups = _share_out(files, jobs)
    summary = ImportSummary()
    with tempfile.TemporaryDirectory(prefix="rhip-import-") as tmp:
        children = []
        for k, group in enumerate(g for g in groups if g):
            out = Path(tmp) / f"{k}.json"
            args = [
                sys.executable,
                "-m",
                "rhip.cli.main",
                "import",
                str(path),
                "--batch-size",
                str(batch_size),
            ]
            args += [a for f in group for a in ("--only", str(f))] + ["--summary-json", str(out)]
            children.append((subprocess.Popen(args), out, sum(f.stat().st_size for f in group)))  # noqa: S603
        failed = [child.returncode for child, _, _ in children if child.wait() != 0]
        if failed:
            console.print(f"[red]{len(failed)} import process(es) failed (exit status {failed[0]})[/red]")
            raise typer.Exit(1)
        for _child, out, size in children:
            advance(size)
            part = orjson.loads(out.read_bytes())
            summary.imported.update(part["imported"])
            summary.files += part["files"]
            summary.rejected.extend(Rejection(**r) for r in part["rejected"])
    return summary


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="folder to write one NDJSON file per resource type into")] = Path(
        "var/export"
    ),
    types: Annotated[
        str | None, typer.Option("--type", help="comma-separated resource types (default: all)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="only resources changed since this instant")] = None,
) -> None:
    """Export current resources as NDJSON, one file per resource type."""
    from rhip.fhir.bulk import export_resources

    settings = _settings()
    platform = _platform(settings)
    wanted = [t.strip() for t in types.split(",")] if types else sorted(platform.table.resource_types)
    unknown = [t for t in wanted if not platform.table.is_resource_type(t)]
    if unknown:
        console.print(f"[red]unknown resource types: {', '.join(unknown)}[/red]")
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    parser = platform.fhir.interactions.parser
    handles: dict[str, BinaryIO] = {}
    try:
        for stored in export_resources(platform.repository, parser, wanted, since):
            fh = handles.get(stored.resource_type)
            if fh is None:
                fh = handles[stored.resource_type] = (out / f"{stored.resource_type}.ndjson").open("wb")
            assert stored.content is not None
            fh.write(stored.content + b"\n")
            counts[stored.resource_type] += 1
    finally:
        for fh in handles.values():
            fh.close()
        platform.close()
    console.print(
        f"exported {sum(counts.values())} resources to {out}: "
        + ", ".join(f"{t} {n}" for t, n in sorted(counts.items()))
    )


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="folder to write the sample NDJSON into")] = Path("var/sample"),
    residents: Annotated[int, typer.Option(help="number of residents")] = 200,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
) -> None:
    """Write the small built-in sample region (institutions, practitioners, residents and their care)."""
    from rhip.synth.sample import SampleRegion

    region = SampleRegion(seed)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "1-organizations.ndjson").open("wb") as fh:
        for r in region.organizations() + region.practitioners():
            fh.write(orjson.dumps(r) + b"\n")
    n = 0
    with (out / "2-residents.ndjson").open("wb") as fh:
        for record in region.residents(residents):
            for r in record:
                fh.write(orjson.dumps(r) + b"\n")
                n += 1
    console.print(f"wrote {n} resources for {residents} residents to {out}")


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="folder to write the region into")] = Path("var/synth"),
    people: Annotated[int, typer.Option(help="residents at the start of the simulated years")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same files")] = 1,
    start: Annotated[str, typer.Option(help="first simulated day (YYYY-MM-DD)")] = "2022-01-01",
    years: Annotated[int, typer.Option(help="simulated years")] = 4,
    workers: Annotated[int, typer.Option(help="worker processes (0: one per core)")] = 0,
    formats: Annotated[
        str, typer.Option(help="comma-separated: fhir, bundles, hl7v2, hl7v3, cda")
    ] = "fhir,bundles,hl7v2,hl7v3,cda",
) -> None:
    """Generate a synthetic region (合成区域): institutions, residents and their care, in every format."""
    from datetime import date

    from rhip.synth.run import FORMATS, Options, synthesize

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        console.print(f"[red]unknown formats {unknown}; choose from {', '.join(FORMATS)}[/red]")
        raise typer.Exit(2)
    if people < 1 or years < 1:
        console.print("[red]--people and --years must be at least 1[/red]")
        raise typer.Exit(2)
    try:
        first = date.fromisoformat(start)
    except ValueError:
        console.print(f"[red]--start must be a date (YYYY-MM-DD), not {start!r}[/red]")
        raise typer.Exit(2) from None
    options = Options(
        out=out, people=people, seed=seed, start=first, years=years, workers=workers, formats=chosen
    )
    with Progress(
        TextColumn("generating"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} households"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("synth", total=None)
        summary = synthesize(options, lambda done, total: progress.update(task, completed=done, total=total))
    console.print(
        f"wrote {summary.total:,} resources for {summary.people:,} residents in {summary.households:,} "
        f"households to {out} in {summary.seconds:.1f} s "
        f"({summary.total / max(summary.seconds, 1e-9):,.0f} resources/s)"
    )


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
