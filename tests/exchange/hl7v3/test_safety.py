"""Hostile and broken input: always an AR/AE (or a SOAP Fault when even the envelope is unreadable), never a
crash, nothing read from the file system, and every refused request kept in the rejects store."""

from __future__ import annotations

import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v3.service import V3Service
from rhip.exchange.rejects import RejectStore
from rhip.xmlsafe import parse_xml

from .helpers import GOLDEN, FixedClock, ack_of, counter_uuids, detail_text, send

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<PRPA_IN201311UV02 xmlns="urn:hl7-org:v3"><id root="2.16.156.10011.2.5.1.1" extension="&xxe;"/></PRPA_IN201311UV02>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><PRPA_IN201311UV02 xmlns="urn:hl7-org:v3">&lol9;</PRPA_IN201311UV02>'
)
# An internal subset without DOCTYPE in the first bytes: entities declared far down are refused too.
LATE_ENTITY = b"<PRPA_IN201311UV02>" + b" " * 5000 + b'<!ENTITY x "y"></PRPA_IN201311UV02>'


def register_body() -> bytes:
    """A valid person register."""
    return (GOLDEN / "07-person-register.request.xml").read_bytes()


def hip(message: bytes, action: str = "PatientInfoRegister") -> bytes:
    """``message`` in a SOAP 1.2 HIPMessageServer envelope, as text in CDATA."""
    text = message.decode()
    return (
        f'<soap:Envelope xmlns:soap="{SOAP12}" xmlns:urn="urn:hl7-org:v3"><soap:Body><urn:HIPMessageServer>'
        f"<urn:action>{action}</urn:action><urn:message><![CDATA[{text}]]></urn:message></urn:HIPMessageServer>"
        "</soap:Body></soap:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "RHIP-V3-0001"),
        (b"   \n", "RHIP-V3-0001"),
        (b"\x00\xff\xfe garbage", "RHIP-V3-0001"),
        (b"<PRPA_IN201311UV02 xmlns='urn:hl7-org:v3'><id", "RHIP-V3-0001"),
        (XXE, "RHIP-V3-0001"),
        (LAUGHS, "RHIP-V3-0001"),
        (LATE_ENTITY, "RHIP-V3-0001"),
        (b"<a>" * 5000 + b"</a>" * 5000, "RHIP-V3-0001"),
        (b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", "RHIP-V3-0005"),
        (b"<PRPA_IN201311UV02 xmlns='urn:other'/>", "RHIP-V3-0005"),
    ],
    ids=[
        "empty",
        "blank",
        "binary",
        "truncated",
        "xxe",
        "billion-laughs",
        "late-entity",
        "deep",
        "cda",
        "other-ns",
    ],
)
def test_unreadable_plain_xml_gets_an_ar_with_a_4xx(service: V3Service, body: bytes, code: str) -> None:
    answer = send(service, body, "application/xml")
    assert 400 <= answer.status < 500
    assert ack_of(answer) == ("AR", code)
    assert b"root:" not in answer.body, "nothing of /etc/passwd"


def test_an_oversized_body_is_refused_before_parsing(v3_platform: Platform, rejects: RejectStore) -> None:
    small = V3Service(v3_platform.fhir, rejects=rejects, max_bytes=10_000, clock=FixedClock())
    body = register_body().replace(b"<controlActProcess", b"<!--" + b"x" * 20_000 + b"--><controlActProcess")
    answer = send(small, body)
    assert (answer.status, ack_of(answer)) == (413, ("AR", "RHIP-V3-0002"))
    head = small.refuse_oversized("application/xml", body[:100], 10_000)
    assert (head.status, ack_of(head)) == (413, ("AR", "RHIP-V3-0002"))
    assert [r.reason_code for r in rejects.list(channel="hl7v3")] == ["RHIP-V3-0002", "RHIP-V3-0002"]


def test_a_dtd_inside_a_soap_message_text_is_refused_too(service: V3Service) -> None:
    # Entity declarations anywhere in the body make the whole envelope unreadable: a Fault carrying the AR.
    answer = send(service, hip(XXE.split(b"?>", 1)[1]))
    assert (answer.status, answer.ack_code, ack_of(answer)) == (400, "Fault", ("AR", "RHIP-V3-0001"))
    # A DOCTYPE the envelope's own check cannot see (far into the body) is refused when the message is read.
    inner = b'<!DOCTYPE PRPA_IN201311UV02 SYSTEM "file:///etc/passwd">' + register_body().split(b"?>", 1)[1]
    padded = hip(inner).replace(b"<soap:Body>", b"<soap:Header>" + b" " * 5000 + b"</soap:Header><soap:Body>")
    answer = send(service, padded)
    assert answer.status == 200, "the envelope was readable: the MCCI goes back inside it"
    assert ack_of(answer) == ("AR", "RHIP-V3-0001")
    assert b"root:" not in answer.body


def test_an_unreadable_soap_envelope_gets_a_fault_carrying_the_ar(service: V3Service) -> None:
    for body in (b"<soap:Envelope xmlns:soap='" + SOAP12.encode() + b"'><soap:Body>", XXE):
        answer = service.handle(body, "application/soap+xml; charset=utf-8")
        assert answer.status == 400 and answer.ack_code == "Fault"
        root = parse_xml(answer.body)
        assert (
            root.find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault/{{{SOAP12}}}Code/{{{SOAP12}}}Value").text
            == "soap:Sender"
        )
        assert ack_of(answer) == ("AR", "RHIP-V3-0001")
    no_body = f"<soap:Envelope xmlns:soap='{SOAP12}'><soap:Header/></soap:Envelope>".encode()
    assert service.handle(no_body, "application/soap+xml").ack_code == "Fault"


def test_an_empty_soap_body_gets_an_ar_inside_the_envelope(service: V3Service) -> None:
    body = f"<soap:Envelope xmlns:soap='{SOAP12}'><soap:Body/></soap:Envelope>".encode()
    answer = send(service, body)
    assert (answer.status, ack_of(answer)) == (200, ("AR", "RHIP-V3-0004"))
    assert answer.content_type.startswith("application/soap+xml")
    empty_message = hip(b"").replace(b"<![CDATA[]]>", b"")
    assert ack_of(send(service, empty_message)) == ("AR", "RHIP-V3-0004")


def test_a_wrong_content_type_gets_a_415(service: V3Service) -> None:
    answer = service.handle(register_body(), "application/json")
    assert (answer.status, ack_of(answer)) == (415, ("AR", "RHIP-V3-0003"))


def test_a_soap_body_that_is_plain_xml_is_refused(service: V3Service) -> None:
    answer = service.handle(register_body(), "application/soap+xml")
    assert (answer.status, ack_of(answer)[0]) == (400, "AR")


def test_refused_requests_are_kept_with_their_bytes_and_answer_and_replay_records_nothing(
    service: V3Service, rejects: RejectStore
) -> None:
    body = register_body().replace(
        b'code="1" codeSystem="2.16.156.10011.2.3.3.4"', b'code="7" codeSystem="x"'
    )
    answer = send(service, body)
    assert ack_of(answer) == ("AE", "RHIP-V3-0011")
    (kept,) = rejects.list(channel="hl7v3", with_raw=True)
    assert kept.raw == body and kept.ack == answer.body
    assert (kept.sender, kept.control_id, kept.reason_code) == (
        "510704104X01-PHIS",
        "510704104X01-0000101-0001",
        "RHIP-V3-0011",
    )
    assert "administrativeGenderCode" in kept.reason
    assert service.replay(body, "application/xml").ack_code == "AE"
    assert len(rejects.list(channel="hl7v3")) == 1
    fixed = service.replay(register_body(), "application/xml")
    assert fixed.ack_code == "AA"


def test_a_request_posted_to_the_wrong_service_gets_an_ar(service: V3Service) -> None:
    answer = service.handle(register_body(), "application/xml", service="organization")
    assert ack_of(answer) == ("AR", "RHIP-V3-0006")
    assert "/hl7v3/person" in detail_text(answer)
    assert service.handle(register_body(), "application/xml", service="person").ack_code == "AA"
    assert service.handle(register_body(), "application/xml", service="PatientInfoRegister").ack_code == "AA"
    assert service.handle(register_body(), "application/xml", service="nonsense").ack_code == "AR"


def test_a_failure_below_the_door_becomes_an_ae_not_a_crash(v3_platform: Platform) -> None:
    class Broken:
        def handle(self, req: object) -> object:
            raise RuntimeError("database on fire")

    service = V3Service(Broken(), clock=FixedClock(), new_uuid=counter_uuids())  # type: ignore[arg-type]
    answer = send(service, register_body())
    assert (answer.status, ack_of(answer)) == (200, ("AE", "RHIP-V3-0020"))
    assert "fire" not in detail_text(answer), "internal details stay in the log"
