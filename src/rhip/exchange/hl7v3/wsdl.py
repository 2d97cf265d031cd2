"""The WSDL 1.1 of the HL7 v3 door, so that SOAP tools (SoapUI, zeep, CXF, .NET) can be pointed at it.

One service ``HIPService`` with a SOAP 1.2 port (and a SOAP 1.1 one for older tools), two styles of
operation on the same endpoint:
- ``HIPMessageServer(action, message) → HIPMessageServerResult``: the Chinese platforms' operation, the
  interaction travelling as text;
- one document/literal operation per service (``PatientInfoRegister`` …) whose Body is the interaction
  itself (``hl7:PRPA_IN201311UV02``) and whose answer is ``hl7:MCCI_IN000002UV01`` or the query answer.
The interactions' content is open (``xs:any``, lax): the HL7 schemas are not shipped, and the platform
checks content itself, answering AE/AR with the element at fault.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from rhip.exchange.hl7v3.registry import SERVICES, Service

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="HIPService" targetNamespace="urn:hl7-org:v3"
  xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
  xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
  xmlns:hl7="urn:hl7-org:v3">
  <wsdl:documentation>rhip HL7 v3 interaction services (WS/T 448 / WS/T 790 family): person, organization,
provider, terminology and document services. Send an interaction as the SOAP Body (document/literal) or as
text through HIPMessageServer(action, message). Answers: MCCI_IN000002UV01 (AA/AE/AR) or the query answer.</wsdl:documentation>
  <wsdl:types>
    <xs:schema targetNamespace="urn:hl7-org:v3" elementFormDefault="qualified">
      <xs:complexType name="Interaction">
        <xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
        <xs:anyAttribute processContents="lax"/>
      </xs:complexType>
      <xs:element name="HIPMessageServer"><xs:complexType><xs:sequence>
        <xs:element name="action" type="xs:string" minOccurs="0"/>
        <xs:element name="message" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="HIPMessageServerResponse"><xs:complexType><xs:sequence>
        <xs:element name="HIPMessageServerResult" type="xs:string"/>
      </xs:sequence></xs:complexType></xs:element>
"""


def _operations(services: list[Service]) -> tuple[str, str, list[str]]:
    """(messages, portType operations, binding operation names) of the document/literal services."""
    elements = sorted({s.interaction for s in services} | {s.answer for s in services})
    messages = "".join(
        f'  <wsdl:message name="{name}"><wsdl:part name="body" element="hl7:{name}"/></wsdl:message>\n'
        for name in elements
    )
    port = "".join(
        f'    <wsdl:operation name="{s.action}"><wsdl:documentation>{s.title} {s.interaction}</wsdl:documentation>'
        f'<wsdl:input message="hl7:{s.interaction}"/><wsdl:output message="hl7:{s.answer}"/></wsdl:operation>\n'
        for s in services
    )
    return messages, port, [s.action for s in services]


def _binding(name: str, ns: str, transport_ns: str, operations: list[str]) -> str:
    ops = "".join(
        f'    <wsdl:operation name="{op}"><{ns}:operation soapAction="urn:hl7-org:v3/{op}" style="document"/>'
        f'<wsdl:input><{ns}:body use="literal"/></wsdl:input><wsdl:output><{ns}:body use="literal"/></wsdl:output>'
        "</wsdl:operation>\n"
        for op in operations
    )
    return (
        f'  <wsdl:binding name="{name}" type="hl7:HIPServiceSoap">\n'
        f'    <{ns}:binding style="document" transport="{transport_ns}"/>\n{ops}  </wsdl:binding>\n'
    )


def wsdl(address: str, group: str | None = None) -> bytes:
    """The WSDL with ``address`` as the endpoint (only one group's services when ``group`` is given)."""
    services = [s for s in SERVICES.values() if group is None or s.group == group]
    types = "".join(
        f'      <xs:element name="{name}" type="hl7:Interaction"/>\n'
        for name in sorted({s.interaction for s in services} | {s.answer for s in services})
    )
    messages, port, names = _operations(services)
    operations = ["HIPMessageServer", *names]
    http = "http://schemas.xmlsoap.org/soap/http"
    location = quoteattr(address)
    text = (
        _HEAD
        + types
        + "    </xs:schema>\n  </wsdl:types>\n"
        + '  <wsdl:message name="HIPMessageServerSoapIn"><wsdl:part name="parameters" element="hl7:HIPMessageServer"/>'
        "</wsdl:message>\n" + '  <wsdl:message name="HIPMessageServerSoapOut"><wsdl:part name="parameters" '
        'element="hl7:HIPMessageServerResponse"/></wsdl:message>\n'
        + messages
        + '  <wsdl:portType name="HIPServiceSoap">\n'
        '    <wsdl:operation name="HIPMessageServer"><wsdl:input message="hl7:HIPMessageServerSoapIn"/>'
        '<wsdl:output message="hl7:HIPMessageServerSoapOut"/></wsdl:operation>\n'
        + port
        + "  </wsdl:portType>\n"
        + _binding("HIPServiceSoap12", "soap12", http, operations)
        + _binding("HIPServiceSoap", "soap", http, operations)
        + '  <wsdl:service name="HIPService">\n'
        f'    <wsdl:port name="HIPServiceSoap12" binding="hl7:HIPServiceSoap12"><soap12:address location={location}/>'
        "</wsdl:port>\n"
        f'    <wsdl:port name="HIPServiceSoap" binding="hl7:HIPServiceSoap"><soap:address location={location}/>'
        "</wsdl:port>\n"
        "  </wsdl:service>\n</wsdl:definitions>\n"
    )
    return text.encode("utf-8")
