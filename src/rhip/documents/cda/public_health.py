"""WS/T 483 public-health reports: HSDB03.01 预防接种报告 and HSDB03.02 传染病报告."""

from __future__ import annotations

from rhip.documents.cda.body import read_body
from rhip.documents.cda.context import Extraction


def immunization_report(x: Extraction) -> None:
    """HSDB03.01: every dose given (vaccine, lot, maker, dose number, route, site, vaccinator)."""
    read_body(x)


def infectious_disease_report(x: Extraction) -> None:
    """HSDB03.02: the notifiable case as a Condition with ICD-10 and report-card codes and its case class."""
    read_body(x)
