"""Identity: who is asking (issue #6, part 1).

An OAuth 2.0 token endpoint in the platform: ``client_credentials`` with ``private_key_jwt`` (SMART Backend
Services) for institution systems, ``password`` (argon2id, lock-out, optional TOTP) with rotating refresh
tokens for portal users; short-lived ES256 JWT access tokens, revocation (RFC 7009), signing-key rotation
with a JWKS, optional trust in an external OpenID provider, TLS client certificates of registered clients.

Modules: ``service`` (IdentityService, the entry point), ``config`` (IdentityConfig), ``grants``,
``tokens``, ``keys``, ``assertions``, ``oidc``, ``sessions`` (refresh tokens), ``signin``, ``passwords``,
``totp``, ``sealing``, ``accounts`` (administration), ``authn`` (the cached hot path), ``roles``
(ROLE_SCOPES), ``errors`` (OAuthError), ``tables`` and ``repository`` (SQL).
"""

from rhip.security.identity.config import IdentityConfig, OidcConfig, PasswordPolicy
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.roles import ROLE_SCOPES
from rhip.security.identity.service import IdentityService

__all__ = ["ROLE_SCOPES", "IdentityConfig", "IdentityService", "OAuthError", "OidcConfig", "PasswordPolicy"]
