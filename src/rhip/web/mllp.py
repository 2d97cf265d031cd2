"""The HL7 v2 (MLLP) listener of ``rhip serve``, started and stopped by the web application's lifespan.

Every server process runs its own listener on the same port (``SO_REUSEPORT`` when there are several),
with its own intake batching the messages of the connections the kernel gave it.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from rhip.bootstrap.container import Platform
from rhip.bootstrap.settings import Settings
from rhip.exchange.hl7v2.intake.batcher import BatchingIntake
from rhip.exchange.mllp import MllpConfig, MllpServer, start_mllp
from rhip.exchange.mllp.server import Identify, Sender, anyone

log = logging.getLogger("rhip.web")


@dataclass
class V2Listener:
    """A running MLLP listener and its intake."""

    server: MllpServer
    intake: BatchingIntake

    async def stop(self) -> None:
        """Stop accepting, finish the messages in flight, stop the intake."""
        await self.server.stop()
        await self.intake.close()


async def start_v2_listener(platform: Platform, settings: Settings) -> V2Listener | None:
    """Start listening for MLLP when the settings enable it (raises when the port cannot be bound)."""
    mllp = settings.exchange.mllp
    if not mllp.enabled or platform.exchange is None:
        return None
    intake = BatchingIntake(
        platform.exchange.v2, linger_s=mllp.batch_linger_ms / 1000, batch_max=mllp.batch_max
    )
    config = MllpConfig(
        host=mllp.host,
        port=mllp.port,
        tls_cert=mllp.tls_cert,
        tls_key=mllp.tls_key,
        tls_client_ca=mllp.tls_client_ca,
        max_message_kb=mllp.max_message_kb,
        idle_timeout_s=mllp.idle_timeout_s,
        reuse_port=settings.server.workers > 1,
        zone=settings.timezone,
    )
    try:
        server = await start_mllp(config, intake, sender_identity(platform, settings))
    except BaseException:
        await intake.close()
        raise
    return V2Listener(server, intake)


def sender_identity(platform: Platform, settings: Settings) -> Identify:
    """Who an MLLP connection is: a registered client by its TLS certificate (it sends for its own
    institution), else a trusted peer address (it sends for the institution each message names in MSH-4),
    else nobody (every message is refused with AR)."""
    security = platform.security
    if security is None or not security.enabled:
        return anyone
    networks = [ipaddress.ip_network(p, strict=False) for p in settings.security.mllp_trusted_peers]

    def identify(peer: str, fingerprint: str | None) -> Sender:
        if fingerprint is not None:
            principal = security.identity.principal_for_certificate(fingerprint)
            if principal is not None and principal.institution:
                # HL7 v2 messages create and update whatever they carry: a client registered with narrower
                # scopes may not send them.
                writes = any(s.resource_type == "*" and {"c", "u"} <= s.permissions for s in principal.scopes)
                return Sender(
                    principal.subject, frozenset({principal.institution}) if writes else frozenset()
                )
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return Sender(f"peer:{peer[:64]}", frozenset())
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in networks):
            return Sender(f"peer:{address}", None)
        return Sender(f"peer:{address}", frozenset())

    return identify
