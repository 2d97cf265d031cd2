"""HL7 v2 messages for the intake's tests, written as a Chinese HIS writes them (see rhip.synth.hl7v2)."""

from __future__ import annotations

INSTITUTION = "510725H01"
MRN_SYSTEM = f"urn:rhip:mrn:{INSTITUTION}"


def msh(
    control_id: str,
    message_type: str,
    *,
    charset: str | None = "UNICODE UTF-8",
    version: str = "2.5.1",
    facility: str = INSTITUTION,
    app: str = "卫宁HIS",
) -> str:
    """An MSH segment (``charset=None``: MSH-18 left empty, as some HIS do)."""
    fields = [
        "MSH",
        "^~\\&",
        app,
        facility,
        "RHIP",
        "RHIP",
        "20250308134800+0800",
        "",
        message_type,
        control_id,
        "P",
        version,
        "",
        "",
        "",
        "",
        "CHN",
        charset or "",
    ]
    return "|".join(fields) + "\r"


def pid(mrn: str, name: str = "张^三", id_card: str = "513701195012285032", sex: str = "M") -> str:
    """A PID with the MRN and the resident ID card."""
    ids = f"{mrn}^^^{INSTITUTION}^MR" if mrn else ""
    if id_card:
        ids += f"~{id_card}^^^&2.16.156.10011.1.3&ISO^NNCHN"
    return f"PID|1||{ids}||{name}||19501228|{sex}\r"


def pv1(visit: str, klass: str = "O") -> str:
    """A PV1 naming the visit."""
    return (
        f"PV1|1|{klass}|03^^^{INSTITUTION}^^^^^内科||||0003^李^四^^^^^^{INSTITUTION}||||||||||||"
        f"{visit}^^^{INSTITUTION}^VN||||||||||||||||||||{INSTITUTION}|||||20250308134800+0800\r"
    )


def adt(
    control_id: str,
    mrn: str,
    *,
    event: str = "A04",
    visit: str | None = None,
    name: str = "张^三",
    charset: str | None = "UNICODE UTF-8",
    id_card: str = "513701195012285032",
) -> str:
    """An ADT message of one visit."""
    structure = "ADT_A03" if event == "A03" else "ADT_A01"
    return (
        msh(control_id, f"ADT^{event}^{structure}", charset=charset)
        + f"EVN|{event}|20250308134800+0800\r"
        + pid(mrn, name, id_card)
        + pv1(visit or f"MZ{control_id}")
    )


def a40(control_id: str, surviving: str, obsolete: str) -> str:
    """A merge: ``obsolete``'s record is ``surviving``'s."""
    return (
        msh(control_id, "ADT^A40^ADT_A39")
        + "EVN|A40|20250308134800+0800\r"
        + pid(surviving, id_card="")
        + f"MRG|{obsolete}^^^{INSTITUTION}^MR\r"
    )


def encoded(text: str, codec: str = "utf-8") -> bytes:
    """The bytes of a message."""
    return text.encode(codec)
