"""The document registry's FHIR interface: MHD ITI-65 Provide Document Bundle on the transaction endpoint.

The rest of MHD needs nothing of its own: Find Document References (ITI-67) and Find Document Lists
(ITI-66) are the standard DocumentReference and List searches (patient, type, date, author, status,
relatesto, security-label, identifier …), and Retrieve Document (ITI-68) is a read of the Binary the
attachment url names.
"""

from __future__ import annotations

from rhip.documents.mhd import ProvideBundle
from rhip.documents.model import RejectSink
from rhip.documents.service import DocumentService
from rhip.fhir.rest.extensions import Extensions


def register(extensions: Extensions, service: DocumentService, rejects: RejectSink | None = None) -> None:
    """Add the Provide Document Bundle hooks (one per MHD Provide bundle profile) to the FHIR API."""
    for hook in ProvideBundle(service, rejects).hooks():
        extensions.add_bundle_hook(hook)
