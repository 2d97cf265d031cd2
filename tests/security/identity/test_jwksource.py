"""Other parties' key sets: parsing, choosing a key, fetching and keeping keys when a fetch fails."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from rhip.security.identity.config import OidcConfig
from rhip.security.identity.jwksource import (
    JwksSource,
    _HttpsRedirects,
    check_location,
    parse_jwks,
    select_key,
)
from rhip.security.identity.oidc import ExternalIssuer

from .support import ClientKey


def test_parse_refuses_private_and_malformed_sets() -> None:
    key = ClientKey("ES256")
    assert parse_jwks(orjson.dumps(key.jwks())) == [key.public_jwk]
    for bad in (
        {"keys": [{**key.public_jwk, "d": "x"}]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"nokeys": []},
        [],
    ):
        with pytest.raises(ValueError):
            parse_jwks(orjson.dumps(bad))


def test_select_key_by_kid_alg_and_use() -> None:
    es, rs = ClientKey("ES256", kid="e"), ClientKey("RS256", kid="r")
    keys = [es.public_jwk, rs.public_jwk]
    assert select_key(keys, "e", "ES256") is not None
    assert select_key(keys, "e", "ES384") is None  # P-256 key, P-384 algorithm
    assert select_key(keys, "r", "ES256") is None  # RSA key, EC algorithm
    assert select_key(keys, "r", "RS384") is None  # the key says RS256
    assert select_key(keys, None, "ES256") is not None  # one candidate without a kid
    assert select_key([es.public_jwk, {**es.public_jwk, "kid": "e2"}], None, "ES256") is None  # ambiguous
    assert select_key([{**es.public_jwk, "use": "enc"}], "e", "ES256") is None
    assert select_key(keys, "e", "HS256") is None


def test_locations() -> None:
    check_location("https://client.example/jwks.json")
    for bad in ("http://client.example/jwks.json", "ftp://x", "/no/such/file.json"):
        with pytest.raises(ValueError):
            check_location(bad)
    with pytest.raises(ValueError):
        ExternalIssuer(
            OidcConfig(issuer="https://sso", jwks_url="http://sso/jwks"), audiences=("a",), leeway=30
        )


def test_fetched_keys_survive_a_failed_fetch(tmp_path: Path) -> None:
    key = ClientKey("ES384", kid="k")
    path = tmp_path / "jwks.json"
    path.write_bytes(orjson.dumps(key.jwks()))
    source = JwksSource(location=str(path), ttl=0.0, refetch_interval=0.0)
    assert source.key("k", "ES384") is not None
    path.write_text("not json")
    assert source.key("k", "ES384") is not None  # stale, refetch failed: the old keys still work
    path.unlink()
    assert source.key("k", "ES384") is not None
    assert source.key("other", "ES384") is None


def test_redirects_must_stay_on_https() -> None:
    handler = _HttpsRedirects()
    request = urllib.request.Request("https://client.example/jwks.json")
    with pytest.raises(urllib.error.URLError):
        handler.redirect_request(request, None, 302, "Found", {}, "http://client.example/jwks.json")
    assert (
        handler.redirect_request(request, None, 302, "Found", {}, "https://cdn.example/jwks.json") is not None
    )
