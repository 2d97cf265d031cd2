"""``rhip import`` of CDA documents: .xml files, folders of them and zips of them, several per transaction."""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rhip.core.errors import RhipError
from rhip.documents.model import DocumentReceipt
from rhip.documents.service import DocumentService

DOCUMENT_SUFFIXES = (".xml", ".zip")
DEFAULT_BATCH = 50
MAX_SENDER = 128


@dataclass
class ImportCounts:
    """What an import did: documents read, registered (or found registered already) and refused, by reason."""

    files: int = 0
    documents: int = 0
    registered: int = 0
    extracted: int = 0  # resources extracted from the documents registered now
    patient_ids: set[str] = field(default_factory=set)  # the Patients the registered documents belong to
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # error code -> documents refused with it


def document_files(path: Path) -> list[Path]:
    """The files an import reads: the file itself, or every .xml and .zip below a folder, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)


def iter_documents(paths: Iterable[Path]) -> Iterator[tuple[bytes, str]]:
    """(raw bytes, where it came from) of every document of the paths; zips are read entry by entry."""
    for path in paths:
        for file in document_files(path):
            if file.suffix.lower() == ".zip":
                with zipfile.ZipFile(file) as archive:
                    for name in sorted(archive.namelist()):
                        if name.lower().endswith(".xml"):
                            yield archive.read(name), f"{file.name}/{name}"[-MAX_SENDER:]
            else:
                yield file.read_bytes(), str(file)[-MAX_SENDER:]


def import_documents(
    service: DocumentService,
    paths: Iterable[Path],
    *,
    batch_size: int = DEFAULT_BATCH,
    channel: str = "cda",
    progress: Callable[[int], None] | None = None,
) -> ImportCounts:
    """Register every CDA document of ``paths``, ``batch_size`` per FHIR transaction (refused ones go to the
    rejects sink); ``progress`` is told how many documents each batch held."""
    counts = ImportCounts()
    paths = list(paths)
    counts.files = sum(len(document_files(p)) for p in paths)
    batch: list[tuple[bytes, str]] = []
    for item in iter_documents(paths):
        batch.append(item)
        if len(batch) >= batch_size:
            _register(service, batch, channel, counts, progress)
            batch = []
    if batch:
        _register(service, batch, channel, counts, progress)
    return counts


def _register(
    service: DocumentService,
    batch: list[tuple[bytes, str]],
    channel: str,
    counts: ImportCounts,
    progress: Callable[[int], None] | None,
) -> None:
    for outcome in service.submit_many(batch, channel=channel):
        counts.documents += 1
        if isinstance(outcome, DocumentReceipt):
            counts.registered += 1
            counts.extracted += len(outcome.extracted)
            counts.patient_ids.add(outcome.patient_id)
        elif isinstance(outcome, RhipError):
            counts.rejected += 1
            counts.reasons[outcome.code] += 1
    if progress is not None:
        progress(len(batch))
