"""WS/T 483 HSDA00.01 个人基本健康信息登记: blood type, allergies, past diseases, operations and histories."""

from __future__ import annotations

from rhip.documents.cda.body import read_body
from rhip.documents.cda.context import Extraction
from rhip.documents.cda.emr import history_findings


def registration(x: Extraction) -> None:
    """The health-record registration: the shared readers, then the histories in words."""
    read_body(x)
    history_findings(x)
