"""HL7 v2 messages → FHIR transaction Bundles: one pure mapper per message type (``MAPPERS``).

``MAPPERS`` is keyed ``"ADT^A01"``, ``"SIU^S12"`` …; :func:`map_message` looks a message up in it and
answers an unsupported message type (HL7 200) or event (201) with a :class:`MappingError`.
"""

from __future__ import annotations

from collections.abc import Mapping

from rhip.exchange.hl7v2.mapping import adt, mdm, orders, oru, siu, vxu
from rhip.exchange.hl7v2.mapping.base import Mapped, Mapper, MappingContext, MappingError
from rhip.exchange.hl7v2.message import Message

__all__ = ["MAPPERS", "Mapped", "Mapper", "MappingContext", "MappingError", "map_message"]

MAPPERS: dict[str, Mapper] = {
    **adt.MAPPERS,
    **siu.MAPPERS,
    **oru.MAPPERS,
    **vxu.MAPPERS,
    **orders.MAPPERS,
    **mdm.MAPPERS,
}


def map_message(message: Message, ctx: MappingContext, mappers: Mapping[str, Mapper] | None = None) -> Mapped:
    """Map one message with the mapper of its type; MappingError 200/201 when there is none."""
    table = MAPPERS if mappers is None else mappers
    mapper = table.get(message.message_type)
    if mapper is None:
        known = any(name.startswith(message.message_code + "^") for name in table)
        what = "event" if known else "message type"
        raise MappingError(
            f"{message.message_type}: unsupported {what}",
            segment="MSH",
            sequence=1,
            field=9,
            component=2 if known else 1,
            hl7_code="201" if known else "200",
        )
    return mapper(message, ctx)
