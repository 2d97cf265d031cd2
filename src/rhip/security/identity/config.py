"""What the identity service needs to know; bootstrap builds it from ``Settings.security`` and ``Settings.server``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OidcConfig:
    """An external OpenID provider whose tokens the platform trusts (a commission's own single sign-on)."""

    issuer: str
    jwks_url: str  # https URL, or a file path
    audience: str | None = None  # the ``aud`` its tokens must name (default: the platform's FHIR base URLs)
    role_claim: str = "rhip_role"
    institution_claim: str = "rhip_institution"


@dataclass(frozen=True)
class PasswordPolicy:
    """argon2id cost (RFC 9106's second recommended profile by default) and the shortest password accepted."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4
    min_length: int = 8  # NIST SP 800-63B minimum; length beats composition rules


@dataclass(frozen=True)
class IdentityConfig:
    """Token issuer, audiences, lifetimes, lock-out and caches.

    ``audiences``: the FHIR base URLs access tokens are for; the first goes into issued tokens, any is
    accepted (a server reached by several names). ``token_url``: the token endpoint's public URL, the
    ``aud`` of client assertions; ``/auth/token`` under each audience's root is accepted too, and nothing
    taken from a request (``IdentityService.token_urls``).
    """

    issuer: str
    audiences: tuple[str, ...]
    keys_dir: str
    token_url: str | None = None
    access_token_minutes: int = 15
    refresh_token_hours: int = 8
    client_assertion_max_minutes: int = 5
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    oidc: OidcConfig | None = None
    passwords: PasswordPolicy = PasswordPolicy()
    leeway_seconds: int = 30  # clock skew allowed on exp, nbf and iat
    max_issue_minutes: int = (
        1440  # longest token `rhip tokens issue` makes; retired keys stay published this long
    )
    revocation_ttl_seconds: float = 5.0  # revocations reach every process within this
    account_ttl_seconds: float = 30.0  # disabled users and clients within this
    token_cache_size: int = 10_000

    @property
    def audience(self) -> str:
        """The audience written into issued access tokens."""
        return self.audiences[0]

    @property
    def default_token_url(self) -> str:
        """The token endpoint URL when none is configured: under the issuer."""
        return self.token_url or f"{self.issuer.rstrip('/')}/auth/token"
