"""Wires the security layer: identity (tokens), the access policy over the store, the audit trail, the
operation gate and document signatures; maps ``Settings.security`` onto each part's own configuration."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rhip.bootstrap.settings import Settings
from rhip.db.engine import Database
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.search.params import SearchParamRegistry
from rhip.fhir.search.parse import SearchParser
from rhip.security.alerts import GlassAlerts
from rhip.security.audit.appender import ProcessAppender
from rhip.security.audit.trail import AuditConfig, AuditTrail
from rhip.security.care import CareRelations, PatientLinks
from rhip.security.consent import ConsentBook
from rhip.security.directory import Directory
from rhip.security.facts import FactFinder
from rhip.security.guard import Guard
from rhip.security.identity.config import IdentityConfig, OidcConfig
from rhip.security.identity.service import IdentityService
from rhip.security.labels import sensitivity_table
from rhip.security.lookup import StoreLookup
from rhip.security.operations import OperationGate
from rhip.security.policy import AccessPolicy
from rhip.security.repository import SecuredRepository
from rhip.security.search_scope import SearchScoper
from rhip.security.signatures.fhir_api import Signatures, register
from rhip.security.signatures.provenance import Signer, SignerConfig, Verifier, VerifierConfig

log = logging.getLogger("rhip.security")


@dataclass
class SecurityServices:
    """The security layer of one platform."""

    enabled: bool
    identity: IdentityService
    audit: AuditTrail
    guard: Guard
    gate: OperationGate
    signatures: Signatures

    def secure(self, repository: FhirRepository) -> FhirRepository:
        """``repository`` behind the policy (as is when security is disabled)."""
        return SecuredRepository(repository, self.guard) if self.enabled else repository

    def close(self) -> None:
        """Write the audit entries still buffered."""
        self.audit.close()


def audiences(settings: Settings) -> tuple[str, ...]:
    """The FHIR base URLs tokens are for (https too when the server serves TLS)."""
    urls = list(settings.server.own_base_urls())
    if settings.server.tls_cert:
        urls = [u.replace("http://", "https://", 1) for u in urls] + urls
    return tuple(dict.fromkeys(urls))


def identity_config(settings: Settings) -> IdentityConfig:
    """The identity service's configuration from the settings."""
    sec = settings.security
    bases = audiences(settings)
    issuer = sec.issuer or bases[0].removesuffix("/fhir")
    oidc = None
    if sec.oidc_issuer and sec.oidc_jwks_url:
        oidc = OidcConfig(
            issuer=sec.oidc_issuer,
            jwks_url=sec.oidc_jwks_url,
            audience=sec.oidc_audience,
            role_claim=sec.oidc_role_claim,
            institution_claim=sec.oidc_institution_claim,
        )
    return IdentityConfig(
        issuer=issuer,
        audiences=bases,
        keys_dir=sec.keys_dir,
        access_token_minutes=sec.access_token_minutes,
        refresh_token_hours=sec.refresh_token_hours,
        client_assertion_max_minutes=sec.client_assertion_max_minutes,
        lockout_attempts=sec.lockout_attempts,
        lockout_minutes=sec.lockout_minutes,
        oidc=oidc,
    )


def build_security(
    settings: Settings,
    db: Database,
    store: FhirRepository,
    parser: SearchParser,
    registry: SearchParamRegistry,
    links: PatientLinks | None,
    extensions: Extensions | None,
) -> SecurityServices:
    """The identity service, the policy over ``store`` (the unsecured repository), the audit trail and the
    signature operations ($sign, $verify-signature; added to ``extensions`` when given)."""
    sec = settings.security
    lookup = StoreLookup(store, parser)
    facts = FactFinder(registry)
    care = CareRelations(lookup, registry, links, sec.care_window_days)
    policy = AccessPolicy(registry, facts, Directory(lookup), care, ConsentBook(lookup))
    audit_config = AuditConfig(algorithm=sec.audit_hash, flush_ms=sec.audit_flush_ms)
    appender = None
    if sec.audit_appender == "process":
        appender = ProcessAppender(
            {
                "database": settings.database_options(),
                "observer": audit_config.observer,
                "algorithm": audit_config.algorithm,
                "log_level": settings.log_level,
            }
        )
    audit = AuditTrail(db, audit_config, appender=appender)
    guard = Guard(
        policy, SearchScoper(policy), audit, GlassAlerts(sec.break_glass_alert_url), sensitivity_table()
    )
    if not sec.enabled:
        log.warning(
            "security is disabled: no authentication, authorization or audit (RHIP_SECURITY__ENABLED)"
        )
    signer = None
    if sec.signing_key and sec.signing_cert:
        signer = Signer.from_config(SignerConfig(Path(sec.signing_key), Path(sec.signing_cert)))
    verifier = Verifier.from_config(VerifierConfig(Path(sec.ca_bundle) if sec.ca_bundle else None))
    signatures = (
        register(extensions, signer, verifier, parser)
        if extensions is not None
        else Signatures(parser, verifier, signer)
    )
    identity = IdentityService(db, identity_config(settings), audit=audit)
    return SecurityServices(sec.enabled, identity, audit, guard, OperationGate(audit), signatures)
