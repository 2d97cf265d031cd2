"""Sealing of secrets the platform must read back (TOTP seeds): AES-256-GCM under a key in ``keys_dir``.

A copy of the database (a backup, a replica, a reporting account) then holds no usable second factor; the
key file is the one thing to protect alongside the signing keys.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rhip.security.identity.secretfiles import read_secret, write_secret

KEY_FILE = "identity-seal.key"
_PREFIX = "v1:"
_CONTEXT = b"rhip.security.identity.totp"


class Sealer:
    """Seals and unseals short secrets with a key created on first use."""

    def __init__(self, keys_dir: str | Path) -> None:
        self._path = Path(keys_dir) / KEY_FILE
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def _cipher(self) -> AESGCM:
        with self._lock:
            if self._aead is None:
                if not self._path.exists():
                    write_secret(self._path, AESGCM.generate_key(bit_length=256))
                key = read_secret(self._path)
                if len(key) != 32:
                    raise RuntimeError(f"{self._path.name} is not a 256-bit key")
                self._aead = AESGCM(key)
            return self._aead

    def seal(self, text: str) -> str:
        """``text`` encrypted and authenticated, as ASCII."""
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, text.encode(), _CONTEXT)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str) -> str:
        """The text of ``seal``; raises ValueError when it was altered or sealed under another key."""
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed value")
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :])
        try:
            return self._cipher().decrypt(raw[:12], raw[12:], _CONTEXT).decode()
        except Exception as exc:  # InvalidTag: altered, or sealed under another key
            raise ValueError("the sealed value cannot be opened with this key") from exc
