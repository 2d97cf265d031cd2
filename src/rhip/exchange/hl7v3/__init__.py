"""HL7 v3 interaction services in the Chinese platform style (WS/T 448 / WS/T 790 family), SOAP 1.2 and XML.

Person, organization, provider and terminology registration, update and query, person merge, and document
register, query and retrieve; acknowledgements MCCI_IN000002UV01. Everything is stored as FHIR through the
platform's FHIR service. Entry point: :class:`rhip.exchange.hl7v3.service.V3Service`; the interactions are
listed in :mod:`rhip.exchange.hl7v3.registry`; :mod:`rhip.exchange.hl7v3.wsdl` describes them for SOAP tools.
"""
