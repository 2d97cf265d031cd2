"""Property-based fuzzing of the XML path: whatever arrives, the answer is a well-formed MCCI (or SOAP Fault)
with a 2xx/4xx status, and the service never raises."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from rhip.exchange.hl7v3.service import V3Answer, V3Service
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.xmlsafe import parse_xml

from .helpers import GOLDEN, FakeIntake, FixedClock, ack_of, content_type_of, counter_uuids

REQUESTS = [p.read_bytes() for p in sorted(GOLDEN.glob("*.request.xml"))]
VALID = [r for r in REQUESTS if b"<!DOCTYPE" not in r and b"<controlActProcess>" not in r]


class StubFhir:
    """A FHIR service that accepts every transaction and finds nothing (the XML path is under test)."""

    def handle(self, req: FhirRequest) -> FhirResponse:
        """A transaction-response naming one resource per entry, or an empty searchset."""
        if req.method == "POST":
            entries = orjson.loads(req.body).get("entry", [])
            answer: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [
                    {
                        "response": {
                            "status": "201",
                            "location": f"{e['resource']['resourceType']}/x{i}/_history/1",
                        }
                    }
                    for i, e in enumerate(entries)
                ],
            }
            return FhirResponse(200, orjson.dumps(answer))
        if req.method == "GET" and "/" in req.path:
            return FhirResponse(404, b'{"resourceType":"OperationOutcome","issue":[]}')
        return FhirResponse(200, b'{"resourceType":"Bundle","type":"searchset","entry":[]}')


def stub_service() -> V3Service:
    """A v3 service over the stub, with a fake document registry."""
    return V3Service(StubFhir(), documents=FakeIntake(), clock=FixedClock(), new_uuid=counter_uuids())


def check(answer: V3Answer) -> None:
    """The answer is well-formed, carries an acknowledgement, and its status fits it."""
    assert answer.status in (200, 400, 413, 415)
    parse_xml(answer.body)
    code, _ = ack_of(answer)
    assert code in ("AA", "AE", "AR")
    if answer.status != 200:
        assert code == "AR"


text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=400),
    content_type=st.sampled_from(["application/xml", "application/soap+xml", ""]),
)
def test_arbitrary_bytes_never_break_the_door(body: bytes, content_type: str) -> None:
    check(stub_service().handle(body, content_type))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=st.sampled_from(VALID),
    cut=st.integers(min_value=0, max_value=5000),
    junk=st.sampled_from([b"", b"<", b"&", b"]]>", b"<!--", b"\xff", b"<a b='", b"&amp;&lt;"]),
)
def test_truncated_and_spliced_messages_never_break_the_door(request: bytes, cut: int, junk: bytes) -> None:
    body = request[: cut % (len(request) + 1)] + junk + request[cut % (len(request) + 1) :]
    check(stub_service().handle(body, content_type_of(request)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=st.sampled_from(VALID),
    picks=st.lists(
        st.tuples(st.integers(min_value=0), st.sampled_from(["drop", "attr", "text", "twice"]), text),
        max_size=4,
    ),
)
def test_mutated_elements_get_an_answer_naming_what_is_wrong(
    request: bytes, picks: list[tuple[int, str, str]]
) -> None:
    root = parse_xml(request)
    for index, action, value in picks:
        elements = [e for e in root.iter() if isinstance(e.tag, str)][1:]
        if not elements:
            break
        element = elements[index % len(elements)]
        parent = element.getparent()
        if action == "drop" and parent is not None:
            parent.remove(element)
        elif action == "attr":
            name = (list(element.attrib) or ["value"])[index % max(len(element.attrib), 1)]
            element.set(name, value)
        elif action == "text" and len(element) == 0:
            element.text = value
        elif action == "twice" and parent is not None:
            parent.insert(parent.index(element), copy.deepcopy(element))
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    answer = stub_service().handle(body, content_type_of(request))
    check(answer)
    if ack_of(answer)[0] == "AE":
        assert b"<location>" in answer.body or b"RHIP-V3-0020" not in answer.body
