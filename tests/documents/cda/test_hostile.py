"""Hostile and broken XML is refused with a CdaRejected, never parsed dangerously, never a crash."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhip.documents.cda import CdaRejected, CdaTooLarge, ExtractContext, extract, read_document
from rhip.documents.cda import errors as e

GOLDEN = Path(__file__).parent / "golden"
GOOD = (GOLDEN / "C0002-synthetic.xml").read_bytes()
BODY = GOOD.split(b"?>", 1)[1]

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol3;</title></ClinicalDocument>"""
EXTERNAL_DTD = (
    b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument SYSTEM "http://example.com/cda.dtd">\n' + BODY
)
# An entity declared after a long comment, where a check of the first bytes alone would miss it.
LATE_DOCTYPE = b"<!--" + b" " * 5000 + b"-->" + b'<!DOCTYPE x [<!ENTITY e "e">]>' + BODY
DEEP = b'<ClinicalDocument xmlns="urn:hl7-org:v3">' + b"<a>" * 400 + b"</a>" * 400 + b"</ClinicalDocument>"
CONTEXT = ExtractContext(patient_ref="Patient/p", source="urn:rhip:source:cda:test")


@pytest.mark.parametrize(
    "data",
    [XXE, BILLION_LAUGHS, EXTERNAL_DTD, LATE_DOCTYPE, DEEP, b"", b"   ", b"not xml", GOOD[: len(GOOD) // 2]],
    ids=[
        "xxe",
        "billion-laughs",
        "external-dtd",
        "late-doctype",
        "too-deep",
        "empty",
        "blank",
        "text",
        "truncated",
    ],
)
def test_hostile_or_broken_xml_is_rejected(data: bytes) -> None:
    with pytest.raises(CdaRejected) as caught:
        read_document(data)
    assert caught.value.code == e.MALFORMED
    assert b"root:" not in str(caught.value).encode()  # nothing of /etc/passwd in the message


def test_oversized_document_is_rejected_before_parsing() -> None:
    with pytest.raises(CdaTooLarge) as caught:
        read_document(GOOD, max_bytes=len(GOOD) - 1)
    assert caught.value.code == e.TOO_LARGE
    assert caught.value.http_status == 413
    assert read_document(GOOD, max_bytes=len(GOOD)).header.code == "C0002"


def test_bad_entry_value_names_the_entry() -> None:
    broken = re.sub(rb'value="\d+" unit="mm\[Hg\]"', b'value="15two" unit="mm[Hg]"', GOOD, count=1)
    assert broken != GOOD
    doc = read_document(broken)
    with pytest.raises(CdaRejected) as caught:
        extract(doc, CONTEXT)
    assert caught.value.code == e.BAD_VALUE
    assert caught.value.path.startswith("/ClinicalDocument/component/structuredBody/component[")
    assert caught.value.path.endswith("/observation/value")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(GOOD) - 1), st.binary(min_size=0, max_size=3), st.integers(0, 3))
def test_damaged_documents_are_read_or_rejected(at: int, insert: bytes, cut: int) -> None:
    damaged = GOOD[:at] + insert + GOOD[at + cut :]
    try:
        doc = read_document(damaged)
        extract(doc, CONTEXT)
    except CdaRejected:
        pass
