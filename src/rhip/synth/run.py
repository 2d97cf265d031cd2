"""``rhip synth``: build a region, simulate it, and stream every format to disk.

The population and the outbreak plan are made in this process; households are then generated in
batches, in worker processes when there are several cores, and written in household order, so the
output is byte-identical for a seed whatever the number of workers. Memory stays flat: a batch's bytes
are written and dropped before the next batch is taken.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import shutil
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson

from rhip import __version__
from rhip.synth import catalog, hl7v3
from rhip.synth.epidemics import plan_outbreaks
from rhip.synth.household import Context, generate
from rhip.synth.output import Chunk
from rhip.synth.population import Household, PopulationBuilder
from rhip.synth.region import Region

BATCH = 40  # households per unit of work handed to a worker
FORMATS = ("fhir", "bundles", "hl7v2", "hl7v3", "cda")


@dataclass
class Options:
    """What to generate."""

    out: Path
    people: int = 1000
    seed: int = 1
    start: date = date(2022, 1, 1)
    years: int = 4
    workers: int = 0  # 0: one per core
    formats: tuple[str, ...] = FORMATS

    @property
    def end(self) -> date:
        """The first day after the simulated years."""
        return date(self.start.year + self.years, self.start.month, self.start.day)


@dataclass
class Summary:
    """What a run wrote."""

    people: int = 0
    households: int = 0
    resources: Counter[str] = field(default_factory=Counter)
    files: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Resources written (FHIR form)."""
        return sum(self.resources.values())


# The context of the current run, set before the worker processes fork so that they inherit it.
_RUN: dict[str, Context] = {}


def _work(batch: list[Household]) -> list[Chunk]:
    ctx = _RUN["context"]
    return [generate(ctx, hh) for hh in batch]


def synthesize(options: Options, progress: Callable[[int, int], None] | None = None) -> Summary:
    """Generate the region into ``options.out``; ``progress(done, total)`` counts households."""
    began = time.perf_counter()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in (*FORMATS, "truth", "manifest.json"):
        path = out / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    region = Region(options.seed, options.start)
    population = PopulationBuilder(region, options.seed, options.start, options.end).build(options.people)
    outbreaks = plan_outbreaks(population, options.seed)
    forced: dict[int, list[tuple[str, date, str]]] = {}
    for ob in outbreaks:
        for key, onset in ob.cases:
            forced.setdefault(key, []).append((ob.disease, onset, ob.id))
    _RUN["context"] = Context(
        region, options.seed, options.start, options.end, forced, documents="cda" in options.formats
    )
    summary = Summary(people=len(population.persons()), households=len(population.households))
    writer = _Writer(out, options.formats)
    writer.registry(region, options)
    writer.write_json("truth/outbreaks.json", [o.as_json() for o in outbreaks])
    batches = [population.households[i : i + BATCH] for i in range(0, len(population.households), BATCH)]
    done = 0
    # The population, the region and the batches live until the end: moved out of the collector's
    # generations, its full collections no longer walk millions of objects again and again (the stalls
    # that slowed large runs), and forked workers do not copy their pages by touching reference counts.
    gc.collect()
    gc.freeze()
    try:
        for chunks in _map(batches, options.workers):
            for chunk in chunks:
                writer.chunk(chunk)
                summary.resources.update(chunk.counts)
                done += 1
            # What the writer keeps (the zip archives' directories: an entry per document) lives to the
            # end too: freeze it as it comes, so that collections stay as cheap at the millionth document.
            gc.freeze()
            if progress:
                progress(done, len(population.households))
    finally:
        writer.close()
        _RUN.clear()
        gc.unfreeze()
    summary.resources.update(writer.registry_counts)
    summary.files = writer.file_count
    summary.seconds = time.perf_counter() - began
    writer.manifest(options, summary, region)
    return summary


def _map(batches: list[list[Household]], workers: int) -> Iterator[list[Chunk]]:
    count = workers or (os.cpu_count() or 1)
    if count <= 1 or len(batches) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for batch in batches:
            yield _work(batch)
        return
    # fork: the workers inherit the region and the population instead of unpickling them.
    with multiprocessing.get_context("fork").Pool(count) as pool:
        yield from pool.imap(_work, batches, chunksize=1)


class _Writer:
    """Appends chunks to the output files (each file opened once and kept open)."""

    def __init__(self, out: Path, formats: tuple[str, ...]) -> None:
        self.out = out
        self.formats = formats
        self.handles: dict[Path, Any] = {}
        self.zips: dict[Path, zipfile.ZipFile] = {}
        self.registry_counts: Counter[str] = Counter()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one handle per institution and format
        self._append("truth/persons.ndjson", b"")
        self._append("truth/registrations.csv", b"institution,patient,mrn,person,registered,errors\n")
        self._append(
            "truth/notifiable-cases.csv", b"person,disease,onset,reported,institution,condition,outbreak\n"
        )
        self._append("truth/immunizations.csv", b"person,vaccine,dose,due,given\n")

    @property
    def file_count(self) -> int:
        """Files written so far."""
        return len(self.handles) + len(self.zips)

    def _append(self, name: str, data: bytes) -> None:
        path = self.out / name
        fh = self.handles.get(path)
        if fh is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The default 8 KiB buffer: there is a handle per institution and format (thousands).
            fh = self.handles[path] = path.open("wb")
        fh.write(data)

    def _archive(self, name: str, entries: list[tuple[str, bytes]]) -> None:
        path = self.out / name
        zf = self.zips.get(path)
        if zf is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            zf = self.zips[path] = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        for entry, data in entries:
            # A fixed timestamp keeps the archive byte-identical for a seed.
            info = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)

    _SUFFIX: ClassVar[dict[str, str]] = {"fhir": "ndjson", "bundles": "ndjson", "hl7v2": "mllp"}

    def chunk(self, chunk: Chunk) -> None:
        """Append one household's output."""
        for (kind, inst), parts in chunk.files.items():
            if kind in self.formats:
                self._append(f"{kind}/{inst}.{self._SUFFIX[kind]}", b"".join(parts))
        for (kind, inst), entries in chunk.archives.items():
            if kind in self.formats:
                self._archive(f"{kind}/{inst}.zip", entries)
        self._append("truth/persons.ndjson", b"".join(chunk.truth_persons))
        self._append("truth/registrations.csv", b"".join(chunk.registrations))
        self._append("truth/notifiable-cases.csv", b"".join(chunk.cases))
        self._append("truth/immunizations.csv", b"".join(chunk.immunizations))

    def registry(self, region: Region, options: Options) -> None:
        """The institutions, departments and staff: FHIR first, and HL7 v3 registrations where used."""
        lines = []
        for r in region.resources():
            self.registry_counts[r["resourceType"]] += 1
            lines.append(orjson.dumps(r) + b"\n")
        if "fhir" in self.formats:
            # "0-" sorts first: importing the folder loads the registry before the institutions' data.
            self._append("fhir/0-registry.ndjson", b"".join(lines))
        if "hl7v3" in self.formats:
            sent = datetime(options.start.year, options.start.month, options.start.day, 8, 0)
            for inst in region.institutions.values():
                if inst.door != "hl7v3":
                    continue
                org = region.organization_resource(inst)
                parent = (
                    region.organization_resource(region.institutions[inst.parent]) if inst.parent else None
                )
                entries = [
                    (
                        f"{inst.code}-org.xml",
                        hl7v3.organization_register(
                            org,
                            parent,
                            message_id=f"{inst.code}-ORG",
                            sent=sent,
                            sender_device=f"{inst.code}-PHIS",
                        ),
                    )
                ]
                for k, staff in enumerate(inst.staff, start=1):
                    prac = region.practitioner_resource(inst, staff)
                    entries.append(
                        (
                            f"{inst.code}-prov-{k:03d}.xml",
                            hl7v3.provider_register(
                                prac,
                                org,
                                staff.title,
                                message_id=f"{inst.code}-PROV-{k:03d}",
                                sent=sent,
                                sender_device=f"{inst.code}-PHIS",
                            ),
                        )
                    )
                self._archive(f"hl7v3/{inst.code}.zip", entries)

    def write_json(self, name: str, value: Any) -> None:
        """A JSON file, written whole."""
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2))

    def manifest(self, options: Options, summary: Summary, region: Region) -> None:
        """manifest.json: what was generated, from what, and which institution uses which door."""
        self.write_json(
            "manifest.json",
            {
                "generator": f"rhip {__version__}",
                "seed": options.seed,
                "people": summary.people,
                "households": summary.households,
                "start": options.start.isoformat(),
                "end": options.end.isoformat(),
                "formats": list(options.formats),
                "resources": dict(sorted(summary.resources.items())),
                "region": {"city": region.city.code, "name": region.city.name},
                "immunization_schedules": {
                    k: v["title"] for k, v in catalog.immunization()["editions"].items()
                },
                "notifiable_list": catalog.notifiable()["list_version"],
                "institutions": [
                    {
                        "code": i.code,
                        "id": i.id,
                        "name": i.name,
                        "kind": i.kind,
                        "door": i.door,
                        "charset": i.charset if i.door == "hl7v2" else None,
                    }
                    for i in region.institutions.values()
                ],
            },
        )

    def close(self) -> None:
        """Flush and close every file."""
        for fh in self.handles.values():
            fh.close()
        for zf in self.zips.values():
            zf.close()
