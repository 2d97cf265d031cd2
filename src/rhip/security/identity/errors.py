"""OAuth 2.0 errors of the token and revocation endpoints (RFC 6749 §5.2, RFC 7009 §2.2.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rhip.security.principal import Principal

# RFC 6749 §5.2: a client that failed to authenticate gets 401, every other refusal 400.
ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "unsupported_token_type",
        "temporarily_unavailable",
    }
)


class OAuthError(Exception):
    """A refused token or revocation request: an RFC 6749 error code, a description and an HTTP status.

    The description goes to the caller as ``error_description``: it never names a user, a client's key or a
    token, and a failed sign-in does not say whether the account exists. ``principal`` (the account
    refused, when it exists) and ``note`` (why, in more words) are for the audit trail, never the caller.
    """

    def __init__(
        self,
        error: str,
        description: str = "",
        *,
        status: int | None = None,
        principal: Principal | None = None,
        note: str | None = None,
    ) -> None:
        if error not in ERROR_CODES:
            raise ValueError(f"not an OAuth error code: {error!r}")
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        if status is None:
            status = 401 if error == "invalid_client" else 503 if error == "temporarily_unavailable" else 400
        self.status = status
        self.principal = principal
        self.note = note

    def body(self) -> dict[str, str]:
        """The JSON body of the error response."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out
