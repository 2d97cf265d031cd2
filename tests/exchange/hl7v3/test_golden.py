"""Golden files: every interaction, sent in order to one platform, answers exactly as recorded.

``golden/NN-*.request.xml`` are sent in file order (later queries see what earlier registrations stored);
each answer is compared with ``NN-*.response.xml`` after normalising what changes from run to run (the
answer's own message id and creation time, and the platform's resource ids). Set RHIP_UPDATE_GOLDEN=1 to
rewrite the expected files after a deliberate change, and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re

import orjson
from lxml import etree

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v3.service import V3Service
from rhip.fhir.rest.messages import FhirRequest

from .helpers import GOLDEN, HL7, FakeIntake, send

UPDATE = os.environ.get("RHIP_UPDATE_GOLDEN") == "1"
_RESOURCE_ID = re.compile(rb"(?:DocumentReference|Patient|Organization)/[0-9a-f-]{36}")


def normalise(body: bytes) -> bytes:
    """Pretty-printed XML with the volatile parts replaced by placeholders (an HIPMessageServerResult too)."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(body, parser)
    for result in root.iter(f"{HL7}HIPMessageServerResult"):
        inner = normalise((result.text or "").encode())
        result.text = None
        result.append(etree.fromstring(inner, parser))
    for answer in root.iter():
        message_id = answer.find(f"{HL7}id")
        created = answer.find(f"{HL7}creationTime")
        if created is not None and message_id is not None and answer.find(f"{HL7}interactionId") is not None:
            message_id.set("extension", "{message-id}")
            created.set("value", "{now}")
    text = etree.tostring(root, pretty_print=True, encoding="UTF-8")
    return _RESOURCE_ID.sub(lambda m: m.group(0).split(b"/")[0] + b"/{id}", text)


def _patient_id(platform: Platform, mrn: str) -> str:
    query = [("identifier", f"urn:rhip:mrn:510704104X01|{mrn}")]
    bundle = orjson.loads(platform.fhir.handle(FhirRequest("GET", "Patient", query=query)).body or b"{}")
    return str(bundle["entry"][0]["resource"]["id"])


def test_every_golden_request_gets_its_recorded_answer(
    service: V3Service, v3_platform: Platform, intake: FakeIntake
) -> None:
    requests = sorted(GOLDEN.glob("*.request.xml"))
    assert len(requests) >= 30
    failures = []
    for request in requests:
        if request.name.startswith("19-"):
            intake.patient_id = _patient_id(v3_platform, "812524559757")
        answer = send(service, request.read_bytes())
        assert answer.status < 500
        expected_file = request.with_name(request.name.replace(".request.", ".response."))
        got = f"<!-- HTTP {answer.status} {answer.content_type} -->\n".encode() + normalise(answer.body)
        if UPDATE:
            expected_file.write_bytes(got)
            continue
        expected = expected_file.read_bytes() if expected_file.exists() else b""
        if got != expected:
            diff = difflib.unified_diff(
                expected.decode().splitlines(),
                got.decode().splitlines(),
                str(expected_file.name),
                "got",
                lineterm="",
            )
            failures.append("\n".join(diff))
    assert not failures, "\n\n".join(failures)
