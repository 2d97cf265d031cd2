"""HTTP details of the FHIR API that do not depend on a web framework: bodies, preferences, ETags."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson

from rhip.core.errors import InvalidRequest, NotAcceptable, UnsupportedMediaType
from rhip.fhir.repository import StoredResource
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.search.values import date_range, us_to_datetime

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
PATCH_TYPES = ("application/json-patch+json",)
FORM_TYPE = "application/x-www-form-urlencoded"
_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')


@dataclass(frozen=True)
class Preferences:
    """What the ``Prefer`` header asks for."""

    return_: str = "representation"  # minimal | representation | OperationOutcome
    strict: bool = False


def preferences(req: FhirRequest) -> Preferences:
    """Parse ``Prefer: return=…, handling=…``."""
    header = req.header("prefer") or ""
    ret, strict = "representation", False
    for part in re.split(r"[;,]", header):
        key, _, value = part.strip().partition("=")
        value = value.strip().strip('"')
        if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
            ret = value
        elif key == "handling":
            strict = value == "strict"
    return Preferences(ret, strict)


def media_type(req: FhirRequest) -> str:
    """The request's content type without parameters, lower-case."""
    return (req.header("content-type") or "").split(";", 1)[0].strip().lower()


def check_accept(req: FhirRequest) -> None:
    """Refuse requests that ask only for formats other than JSON (406)."""
    fmt = next((v for k, v in req.query if k == "_format"), None)
    if fmt is not None:
        fmt = fmt.replace(" ", "+")  # an unescaped '+' in a query string arrives as a space
        if fmt.lower() in ("json", *JSON_TYPES):
            return
        raise NotAcceptable(
            f"_format={fmt} is not supported; this server speaks FHIR JSON (application/fhir+json)"
        )
    accept = (req.header("accept") or "").lower()
    if not accept:
        return
    kinds = [a.split(";", 1)[0].strip() for a in accept.split(",")]
    if any(k in JSON_TYPES or k in ("*/*", "application/*", "") or k.endswith("+json") for k in kinds):
        return
    raise NotAcceptable(f"Cannot produce {accept}; this server speaks FHIR JSON (application/fhir+json)")


def json_body(req: FhirRequest, allowed: tuple[str, ...] = JSON_TYPES) -> Any:
    """The parsed JSON body; 415 for another content type, 400 when empty or malformed."""
    kind = media_type(req)
    if kind not in allowed:
        shown = kind or "none"
        raise UnsupportedMediaType(f"Content-Type {shown} is not supported here; send {allowed[0]}")
    if not req.body.strip():
        raise InvalidRequest("The request has no body")
    try:
        return orjson.loads(req.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from exc


def resource_body(req: FhirRequest) -> dict[str, Any]:
    """A JSON body that must be a resource (an object with resourceType)."""
    body = json_body(req)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object holding a resource")
    if not isinstance(body.get("resourceType"), str):
        raise InvalidRequest("The body has no resourceType", expression=["resourceType"])
    return body


def form_params(req: FhirRequest) -> list[tuple[str, str]]:
    """Search parameters of a ``POST _search`` body (form-encoded), after the URL's own."""
    if not req.body:
        return []
    if media_type(req) != FORM_TYPE:
        raise UnsupportedMediaType(f"POST _search takes {FORM_TYPE}, not {media_type(req) or 'none'}")
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The form body is not UTF-8") from exc
    return parse_qsl(text, keep_blank_values=True)


def version_from_etag(value: str | None, header: str) -> int | None:
    """The version number in ``If-Match`` / ``If-None-Match`` (``W/"3"``)."""
    if value is None:
        return None
    m = _ETAG.match(value.strip())
    if not m:
        raise InvalidRequest(f'{header} must look like W/"3", not {value!r}')
    return int(m.group(1))


def http_date(stored: StoredResource) -> str:
    """The ``Last-Modified`` value of a version."""
    return _http_date(stored.last_updated)


@lru_cache(maxsize=4096)
def _http_date(instant: str) -> str:
    # The versions written by one transaction share their instant.
    return format_datetime(us_to_datetime(date_range(instant, UTC)[0]), usegmt=True)


def modified_since(stored: StoredResource, header: str | None) -> bool:
    """Whether a version is newer than an ``If-Modified-Since`` date (True when the header is absent or bad)."""
    if not header:
        return True
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return True
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # "-0000" means UTC with no stated zone
    updated = us_to_datetime(date_range(stored.last_updated, UTC)[0])
    return updated.replace(microsecond=0) > since


def resource_headers(base: str, stored: StoredResource) -> dict[str, str]:
    """ETag, Last-Modified and Location headers of a stored version."""
    return {
        "ETag": stored.etag,
        "Last-Modified": http_date(stored),
        "Location": f"{base}/{stored.location}",
    }


def instant_param(value: str, name: str, *, end: bool = False) -> int:
    """A ``_since`` / ``_at`` value as UTC epoch µs: the start of what it names, or with ``end`` its end
    (``2024-03-01`` names that whole day; an instant names itself)."""
    try:
        return date_range(value, UTC)[1 if end else 0]
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be an instant such as 2024-01-01T00:00:00Z", expression=[name]
        ) from exc
