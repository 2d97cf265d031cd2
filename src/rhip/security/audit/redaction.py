"""Free text fit for the audit log: ID and phone numbers masked, secrets and personal search values removed."""

from __future__ import annotations

from rhip.security.masking import redact

# Search parameters whose values are names, identifiers or contact details: recorded without the value.
_PERSONAL_PARAMS = frozenset(
    {
        "name", "family", "given", "phonetic", "identifier", "telecom", "phone", "email", "address",
        "address-city", "address-country", "address-postalcode", "address-state", "address-use",
        "_content", "_text", "text", "mothersMaidenName", "mothers-maiden-name",
    }
)  # fmt: skip
_TEXT_LIMIT = 500


def safe_text(text: str) -> str:
    """Free text fit for the log: ID and phone numbers masked, secrets removed, length capped."""
    return redact(text)[:_TEXT_LIMIT]


def redact_query(query: str) -> str:
    """A query string without the values of parameters that carry names, identifiers or contacts."""
    head, mark, params = query.rpartition("?")
    if not mark:
        head, params = "", query
    parts = []
    for pair in params.split("&"):
        name, eq, value = pair.partition("=")
        # Chains (subject.name) and _has (_has:RelatedPerson:patient:name) name the parameter last; a
        # modifier (name:exact) follows it: any segment that is a personal parameter hides the value.
        segments = {s for piece in name.split(".") for s in piece.split(":")}
        parts.append(f"{name}=***" if eq and value and segments & _PERSONAL_PARAMS else pair)
    return safe_text(f"{head}{mark}{'&'.join(parts)}")
