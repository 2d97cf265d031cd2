"""WS/T 483 chronic-disease follow-ups: HSDB04.01 高血压 and HSDB04.02 2型糖尿病患者随访服务.

Signs, results, the managed disease and the drugs come from the shared readers; what the visit found
besides (随访方式, 此次随访分类, symptoms, advice …) becomes survey Observations coded with their data element.
"""

from __future__ import annotations

from rhip.documents.cda.body import findings, read_body
from rhip.documents.cda.context import Extraction


def followup(x: Extraction) -> None:
    """A follow-up visit: the shared readers, then every other finding of the visit."""
    read_body(x)
    encounter = x.doc.header.encounter
    when = (encounter.start if encounter else None) or x.doc.header.author.time
    findings(x, list(x.sections()), kind="survey", when=when)
