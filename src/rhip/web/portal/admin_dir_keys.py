"""A client system's public keys as pasted into the registration form: a JWKS, one JWK or a PEM key."""

from __future__ import annotations

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from rhip.core.errors import InvalidRequest


def public_jwks(text: str) -> str:
    """A JWKS JSON from what was pasted: a JWKS, a single JWK, or a PEM public key (RSA or EC)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise InvalidRequest("not a PEM public key") from exc
        if isinstance(key, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(key, as_dict=True)
        else:
            raise InvalidRequest("only RSA and EC public keys can sign client assertions")
        jwk["use"] = "sig"
        return orjson.dumps({"keys": [jwk]}).decode()
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("neither a JWKS (JSON) nor a PEM public key") from exc
    if isinstance(doc, dict) and "kty" in doc:
        doc = {"keys": [doc]}
    return orjson.dumps(doc).decode()
