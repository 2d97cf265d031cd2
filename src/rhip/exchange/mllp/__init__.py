"""HL7 v2 over MLLP: the listener ``rhip serve`` runs beside HTTP, and a sender for integrators."""

from rhip.exchange.mllp.server import MllpConfig, MllpServer, start_mllp

__all__ = ["MllpConfig", "MllpServer", "start_mllp"]
