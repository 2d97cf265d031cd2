"""The HL7 v3 routes on a real uvicorn server, called by a real SOAP client (zeep) and by httpx.

zeep reads the WSDL from ``GET /hl7v3/?wsdl`` and calls both kinds of operation: the platforms'
``HIPMessageServer(action, message)`` and a document/literal service whose Body is the interaction itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from lxml import etree
from starlette.applications import Starlette

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.exchange.hl7v3.service import V3Service
from rhip.exchange.rejects import RejectStore
from rhip.web.hl7v3 import hl7v3_routes
from rhip.xmlsafe import parse_xml

zeep = pytest.importorskip("zeep")

GOLDEN = Path(__file__).resolve().parents[1] / "exchange" / "hl7v3" / "golden"
HL7 = "{urn:hl7-org:v3}"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
LIMIT = 200_000


@dataclass
class Running:
    """A server on a free port and what it serves."""

    url: str
    platform: Platform
    rejects: RejectStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """uvicorn in a thread serving the v3 routes over a SQLite platform."""
    folder = tmp_path_factory.mktemp("v3http")
    settings = Settings(database_url=f"sqlite:///{folder}/v3.db", log_format="text")  # type: ignore[arg-type]
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings, empi=False)
    rejects = RejectStore(platform.db)
    v3 = V3Service(platform.fhir, rejects=rejects)
    app = Starlette(routes=hl7v3_routes(lambda: v3, max_body_bytes=LIMIT))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Running(f"http://127.0.0.1:{port}", platform, rejects)
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        platform.close()


def golden(prefix: str) -> bytes:
    """A golden request by its number."""
    (path,) = GOLDEN.glob(f"{prefix}-*.request.xml")
    return path.read_bytes()


def ack(xml: bytes) -> str:
    """The acknowledgement typeCode of an answer."""
    found = next(parse_xml(xml).iter(f"{HL7}acknowledgement"))
    return str(found.get("typeCode"))


def test_the_wsdl_describes_every_service(server: Running) -> None:
    response = httpx.get(f"{server.url}/hl7v3/?wsdl")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    wsdl = parse_xml(response.content)
    operations = {o.get("name") for o in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert {"HIPMessageServer", "PatientInfoRegister", "DocumentRetrieve", "TerminologyQuery"} <= operations
    address = next(wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address"))
    assert address.get("location") == f"{server.url}/hl7v3/"
    person = httpx.get(f"{server.url}/hl7v3/person?WSDL")
    assert b"DocumentRetrieve" not in person.content and b"PatientInfoMerge" in person.content
    assert httpx.get(f"{server.url}/hl7v3/nothing?wsdl").status_code == 404


def test_zeep_registers_and_queries_through_hipmessageserver(server: Running) -> None:
    client = zeep.Client(f"{server.url}/hl7v3/?wsdl")
    register = golden("07").decode().split("?>", 1)[1]
    result = client.service.HIPMessageServer(action="PatientInfoRegister", message=register)
    assert ack(result.encode()) == "AA"
    query = golden("10").decode()
    answer = client.service.HIPMessageServer(action="PatientInfoQuery", message=query)
    root = parse_xml(answer.encode())
    assert root.tag == f"{HL7}PRPA_IN201306UV02"
    assert [
        i.get("extension") for i in root.iter(f"{HL7}item") if i.get("root") == "2.16.156.10011.2.5.1.4"
    ] == ["812524559757"]
    broken = client.service.HIPMessageServer(action="PatientInfoRegister", message="<not-closed>")
    assert ack(broken.encode()) == "AR"


def test_zeep_calls_a_document_literal_service_with_the_interaction_as_body(server: Running) -> None:
    client = zeep.Client(f"{server.url}/hl7v3/?wsdl")
    assert (
        httpx.post(
            f"{server.url}/hl7v3/organization",
            content=golden("01"),
            headers={"content-type": "application/xml"},
        ).status_code
        == 200
    )
    query = parse_xml(golden("03"))
    with client.settings(raw_response=True):
        response = client.service.OrganizationInfoQuery(_value_1=list(query), _attr_1=dict(query.attrib))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/soap+xml")
    envelope = parse_xml(response.content)
    answer = envelope.find(f"{{{SOAP12}}}Body/{HL7}PRPM_IN406110UV01")
    assert answer is not None
    assert ack(etree.tostring(answer)) == "AA"
    names = [p.get("value") for p in answer.iter(f"{HL7}part") if p.get("value", "").endswith("卫生院")]
    assert names == ["游仙区魏城镇卫生院"]


def test_httpx_soap12_and_plain_xml(server: Running) -> None:
    body = golden("27")
    soap = httpx.post(
        f"{server.url}/hl7v3/", content=body, headers={"content-type": "application/soap+xml; charset=utf-8"}
    )
    assert soap.status_code == 200 and soap.headers["content-type"] == "application/soap+xml; charset=utf-8"
    plain = httpx.post(
        f"{server.url}/hl7v3", content=golden("24"), headers={"content-type": "application/xml"}
    )
    assert plain.status_code == 400 and ack(plain.content) == "AR"
    fault = httpx.post(
        f"{server.url}/hl7v3/", content=golden("29"), headers={"content-type": "application/soap+xml"}
    )
    assert fault.status_code == 400 and b"Fault" in fault.content
    help_text = httpx.get(f"{server.url}/hl7v3/")
    assert help_text.status_code == 200 and b"wsdl" in help_text.content


def test_an_oversized_body_is_cut_off_with_a_413_and_kept(server: Running) -> None:
    before = len(server.rejects.list(channel="hl7v3"))
    big = golden("07").replace(
        b"<controlActProcess", b"<!--" + b"x" * (LIMIT + 10) + b"--><controlActProcess"
    )
    response = httpx.post(
        f"{server.url}/hl7v3/person", content=big, headers={"content-type": "application/xml"}
    )
    assert response.status_code == 413 and ack(response.content) == "AR"
    streamed = httpx.post(
        f"{server.url}/hl7v3/person",
        content=iter([big[: LIMIT // 2], big[LIMIT // 2 :]]),
        headers={"content-type": "application/xml"},
    )
    assert streamed.status_code == 413
    kept = server.rejects.list(channel="hl7v3", with_raw=True)
    assert len(kept) == before + 2
    assert all(len(r.raw) <= 64 * 1024 for r in kept[:2])


def test_an_oversized_body_declared_by_content_length_keeps_its_first_bytes(server: Running) -> None:
    big = golden("07").replace(
        b"<controlActProcess", b"<!--" + b"y" * (LIMIT + 10) + b"--><controlActProcess"
    )
    response = httpx.post(
        f"{server.url}/hl7v3/person", content=big, headers={"content-type": "application/xml"}
    )
    assert response.status_code == 413 and ack(response.content) == "AR"
    newest = server.rejects.list(channel="hl7v3", with_raw=True)[0]
    assert newest.raw == big[: 64 * 1024]
