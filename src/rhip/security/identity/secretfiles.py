"""Secret files in ``keys_dir``: created atomically with mode 0600 in a 0700 folder, never overwritten."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger("rhip.security.identity")


def secure_dir(path: str | Path) -> Path:
    """The keys folder, created 0700 when missing."""
    folder = Path(path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def write_secret(path: Path, data: bytes) -> bool:
    """Create ``path`` (0600) holding ``data``; False when it exists already (another process won)."""
    secure_dir(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails when the name exists: the file appears whole, and a concurrent writer cannot replace it.
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)


def read_secret(path: Path) -> bytes:
    """The bytes of a secret file; warns when others than its owner may read it."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("secret file %s is readable by others than its owner (mode %o)", path.name, mode & 0o777)
    return path.read_bytes()


def remove_secret(path: Path) -> None:
    """Delete a secret file that is no longer needed (a retired signing key)."""
    path.unlink(missing_ok=True)
