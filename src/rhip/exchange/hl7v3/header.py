"""The transmission wrapper of an interaction: message id, interaction id, sender and receiver devices.

Layout of the samples (cn-standards.md §1): ``id`` root 2.16.156.10011.2.5.1.1 (the message id is the
extension), ``interactionId`` root 2.16.156.10011.2.5.1.2, devices under root 2.16.156.10011.2.5.1.3 as
``sender/device/id/item``. A sender may also name the institution its device belongs to, the standard
way: ``sender/device/asAgent/representedOrganization/id``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.exchange.hl7v3.datatypes import ORGANIZATION_ROOT
from rhip.exchange.hl7v3.errors import InteractionMismatch
from rhip.exchange.hl7v3.xmlread import Element, attr, child, find, ids, local, path_of

MESSAGE_ID_ROOT = "2.16.156.10011.2.5.1.1"
INTERACTION_ID_ROOT = "2.16.156.10011.2.5.1.2"
DEVICE_ROOT = "2.16.156.10011.2.5.1.3"


@dataclass(frozen=True)
class Header:
    """What the transmission wrapper says about a message."""

    interaction: str
    message_id: str  # the id's extension (its root when it has none); "" when absent
    message_id_root: str
    processing_code: str
    sender: str  # the sender device id
    receiver: str  # the receiver device id
    sender_institution: str  # from sender/device/asAgent/representedOrganization, "" when absent


def _device(root: Element, role: str) -> tuple[str, str]:
    """(device id, represented institution code) of ``sender`` or ``receiver``."""
    device = find(root, f"{role}/device")
    device_ids = ids(child(device, "id"))
    device_id = next((i.value for i in device_ids if i.root == DEVICE_ROOT), "")
    device_id = device_id or (device_ids[0].value if device_ids else "")
    org_ids = ids(find(device, "asAgent/representedOrganization/id"))
    org = next((i.extension for i in org_ids if i.root == ORGANIZATION_ROOT and i.extension), "")
    return device_id, org


def check_interaction_id(root: Element) -> None:
    """InteractionMismatch when ``interactionId`` names another interaction than the root element."""
    declared_element = child(root, "interactionId")
    declared = attr(declared_element, "extension")
    if declared and declared != local(root):
        raise InteractionMismatch(
            f"interactionId says {declared[:40]} but the message is a {local(root)}",
            location=path_of(declared_element) if declared_element is not None else "",
        )


def read_header(root: Element) -> Header:
    """The header of an interaction (read as far as it goes: absent parts are empty)."""
    interaction = local(root)[:64]
    message = child(root, "id")
    sender, sender_org = _device(root, "sender")
    receiver, _ = _device(root, "receiver")
    return Header(
        interaction=interaction,
        message_id=(attr(message, "extension") or attr(message, "root"))[:128],
        message_id_root=attr(message, "root")[:128],
        processing_code=(attr(child(root, "processingCode"), "code") or "P")[:8],
        sender=sender[:128],
        receiver=receiver[:128],
        sender_institution=sender_org,
    )


def unknown_header(interaction: str = "") -> Header:
    """The header of a message that could not be read (answers still need one)."""
    return Header(interaction, "", "", "P", "", "", "")
