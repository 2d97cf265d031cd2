"""Envelopes: SOAP 1.2 (``application/soap+xml``), SOAP 1.1 (tolerated) and plain XML POSTs.

Three shapes arrive, and the answer goes back in the shape the request came in:
- plain XML: the body is the interaction (``<PRPA_IN201311UV02 …>``);
- SOAP with the interaction as the Body's child (document/literal);
- SOAP with the Chinese platforms' ``HIPMessageServer(action, message)`` operation, the interaction as text
  (usually CDATA) in ``message``; the answer goes back as text in ``HIPMessageServerResult``.
The interaction is always the payload's root element; ``action`` only names the service and is not trusted
for dispatch. Parsing goes through :func:`rhip.xmlsafe.parse_xml` only, both for the envelope and for a
message carried as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from rhip.exchange.hl7v3.errors import NoPayload, NotReadable, TooLarge, V3Error, WrongContentType
from rhip.exchange.hl7v3.xmlread import HL7_NS, Element, child, elements, local
from rhip.exchange.hl7v3.xmlwrite import serialize
from rhip.xmlsafe import XmlRejected, XmlTooLarge, parse_xml

SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ERROR_NS = "urn:rhip:error-code"
SOAP12_TYPE = "application/soap+xml"
XML_TYPES = ("application/xml", "text/xml", "application/hl7-v3+xml")
HIP_OPERATION = "HIPMessageServer"
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


@dataclass(frozen=True)
class Envelope:
    """How a request was wrapped, so that its answer is wrapped the same way."""

    soap: str = ""  # "" (plain XML), "1.1" or "1.2"
    hip: bool = False  # the HIPMessageServer(action, message) operation
    action: str = ""

    @property
    def content_type(self) -> str:
        """The content type of the answer."""
        if self.soap == "1.2":
            return f"{SOAP12_TYPE}; charset=utf-8"
        if self.soap == "1.1":
            return "text/xml; charset=utf-8"
        return "application/xml; charset=utf-8"


def media_type(content_type: str) -> str:
    """The media type without parameters, lower-case."""
    return content_type.split(";", 1)[0].strip().lower()


def guess_envelope(body: bytes, content_type: str) -> Envelope:
    """The envelope a request that could not be parsed was probably sent in (for the shape of the answer)."""
    if media_type(content_type) == SOAP12_TYPE:
        return Envelope("1.2")
    head = body[:4096]
    if SOAP12_NS.encode() in head:
        return Envelope("1.2")
    if SOAP11_NS.encode() in head:
        return Envelope("1.1")
    return Envelope()


def _parse(data: bytes, max_bytes: int) -> Element:
    try:
        return parse_xml(data, max_bytes=max_bytes)
    except XmlTooLarge as exc:
        raise TooLarge(exc.message) from None
    except XmlRejected as exc:
        raise NotReadable(exc.message) from None


def open_request(body: bytes, content_type: str, max_bytes: int) -> tuple[Element, Envelope]:
    """The interaction element of a request and its envelope; a V3Error when there is none to read."""
    kind = media_type(content_type)
    if kind and kind != SOAP12_TYPE and kind not in XML_TYPES:
        raise WrongContentType(
            f"Content-Type {kind[:60]} is not accepted: send {SOAP12_TYPE} (SOAP 1.2) or application/xml"
        )
    root = _parse(body, max_bytes)
    namespace = etree.QName(root).namespace or ""
    if local(root) != "Envelope" or namespace not in (SOAP12_NS, SOAP11_NS):
        if kind == SOAP12_TYPE:
            raise NotReadable("an application/soap+xml body must be a SOAP 1.2 Envelope")
        return root, Envelope()
    version = "1.2" if namespace == SOAP12_NS else "1.1"
    soap_body = next((e for e in elements(root) if local(e) == "Body"), None)
    if soap_body is None:
        raise NotReadable("the SOAP Envelope has no Body")
    payload = next(elements(soap_body), None)
    if payload is None or local(payload) == "Fault":
        raise _in(NoPayload("the SOAP Body holds no HL7 v3 message"), Envelope(version))
    if local(payload) != HIP_OPERATION:
        return payload, Envelope(version)
    action_element = child(payload, "action")
    action = (action_element.text or "").strip() if action_element is not None else ""
    message = child(payload, "message")
    text = "".join(message.itertext()).strip() if message is not None else ""
    envelope = Envelope(version, hip=True, action=action[:64])
    if not text:
        # An inline element instead of text: some clients put the interaction itself in <message>.
        inline = next(elements(message), None) if message is not None else None
        if inline is None:
            raise _in(NoPayload("HIPMessageServer/message is empty"), envelope)
        return inline, envelope
    try:
        return _parse(_DECLARATION.sub("", text, count=1).encode("utf-8"), max_bytes), envelope
    except V3Error as error:
        raise _in(error, envelope) from None


def _in(error: V3Error, envelope: Envelope) -> V3Error:
    """Attach the envelope an error was found in, so that its answer is wrapped like the request."""
    error.envelope = envelope
    return error


def envelope_of(error: V3Error) -> Envelope | None:
    """The envelope an error was found inside, when the envelope itself could be read."""
    return error.envelope if isinstance(error.envelope, Envelope) else None


def wrap(answer: Element, envelope: Envelope) -> bytes:
    """The answer in the request's envelope."""
    if not envelope.soap:
        return serialize(answer)
    ns = SOAP12_NS if envelope.soap == "1.2" else SOAP11_NS
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    etree.SubElement(env, f"{{{ns}}}Header")
    body = etree.SubElement(env, f"{{{ns}}}Body")
    if envelope.hip:
        response = etree.SubElement(body, f"{{{HL7_NS}}}HIPMessageServerResponse", nsmap={None: HL7_NS})
        result = etree.SubElement(response, f"{{{HL7_NS}}}HIPMessageServerResult")
        text = etree.tostring(answer, encoding="unicode")
        # CDATA as the platforms answer; a "]]>" in the data forces plain escaped text.
        result.text = etree.CDATA(text) if "]]>" not in text else text
    else:
        body.append(answer)
    return serialize(env)


def soap_fault(version: str, error: V3Error, detail: Element) -> bytes:
    """A SOAP Fault (Sender / Client) carrying the error code, its text and the MCCI AR as detail."""
    ns = SOAP12_NS if version == "1.2" else SOAP11_NS
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns, "rhip": ERROR_NS})
    fault = etree.SubElement(etree.SubElement(env, f"{{{ns}}}Body"), f"{{{ns}}}Fault")
    if version == "1.2":
        code = etree.SubElement(fault, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = "soap:Sender"
        etree.SubElement(
            etree.SubElement(code, f"{{{ns}}}Subcode"), f"{{{ns}}}Value"
        ).text = f"rhip:{error.code}"
        reason = etree.SubElement(fault, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = error.message
        etree.SubElement(fault, f"{{{ns}}}Detail").append(detail)
    else:
        etree.SubElement(fault, "faultcode").text = "soap:Client"
        etree.SubElement(fault, "faultstring").text = f"{error.code}: {error.message}"
        etree.SubElement(fault, "detail").append(detail)
    return serialize(env)
