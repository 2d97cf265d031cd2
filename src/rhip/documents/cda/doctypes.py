"""The shared-document types of WS/T 500 (C0001–C0053) and WS/T 483 (HSDA…/HSDB…/HSDC…), from a data file."""

from __future__ import annotations

from dataclasses import dataclass

from rhip.documents.cda.codes import read_table


@dataclass(frozen=True, slots=True)
class DocumentType:
    """A shared-document type: code (2.16.156.10011.2.4), title, standard part and templateId."""

    code: str
    display: str
    standard: str  # "WS/T 500.7", "WS/T 483.12"
    template_id: str
    template_source: str  # sample | vendor | inferred (see data/document-types.csv)


def _load() -> dict[str, DocumentType]:
    return {
        row["code"]: DocumentType(
            row["code"], row["display"], row["standard"], row["template_id"], row["template_source"]
        )
        for row in read_table("document-types.csv")
    }


DOCUMENT_TYPES: dict[str, DocumentType] = _load()
