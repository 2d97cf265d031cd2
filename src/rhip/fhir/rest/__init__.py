"""FHIR RESTful semantics, independent of the HTTP framework: requests in, responses out.

The web layer turns an HTTP request into a :class:`FhirRequest` and writes the :class:`FhirResponse`
back; MLLP, HL7 v3 and the CLI can drive the same service without HTTP.
"""
