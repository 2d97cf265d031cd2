"""Settings from files: ``RHIP_X_FILE=/run/secrets/x`` gives setting ``RHIP_X`` the content of that file.

The convention of Docker and Kubernetes secrets (a secret mounted as a file, its path in the environment),
so that a database password or a key passphrase never appears in the environment, in ``docker inspect``
or in a process listing. Every ``RHIP_…`` setting can be given this way, nested ones too
(``RHIP_SECURITY__OIDC_AUDIENCE_FILE``). One trailing line break is dropped (editors and ``echo`` add it).

A setting given both ways is an error unless both say the same (a wrong secret must not win silently).
Errors name the variable and the file, never what the file holds; values are never logged.

``FileSecretsSource`` is a pydantic-settings source for ``Settings.settings_customise_sources``: the
values go straight into the settings, never into ``os.environ`` (which every child process inherits).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic_settings.sources import EnvSettingsSource

SUFFIX = "_FILE"
PREFIX = "RHIP_"
MAX_BYTES = 1024 * 1024  # a secret, a key or a certificate; not /dev/zero


class SecretFileError(ValueError):
    """A ``…_FILE`` variable names a file that cannot be read, or conflicts with its plain variable."""


def _read(variable: str, path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        # strerror only: the path is the user's own and holds no secret.
        raise SecretFileError(f"{variable} names {path!r}, which cannot be read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise SecretFileError(f"{variable} names {path!r}, which is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # from None: the decoding error quotes a byte of the secret.
        raise SecretFileError(f"{variable} names {path!r}, which is not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def file_secrets(environ: Mapping[str, str] | None = None, *, prefix: str = PREFIX) -> dict[str, str]:
    """The settings given as files: ``{"RHIP_X": content of $RHIP_X_FILE, …}`` (names as in ``environ``)."""
    environ = os.environ if environ is None else environ
    folded = {name.upper(): value for name, value in environ.items()}
    prefix = prefix.upper()
    found: dict[str, str] = {}
    for variable, path in environ.items():
        upper = variable.upper()
        if not upper.startswith(prefix) or not upper.endswith(SUFFIX) or len(upper) <= len(prefix + SUFFIX):
            continue
        target = variable[: -len(SUFFIX)]
        value = _read(variable, path)
        plain = folded.get(target.upper())
        if plain not in (None, "", value):
            raise SecretFileError(f"both {target} and {variable} are set; set only one of them")
        found[target] = value
    return found


class FileSecretsSource(EnvSettingsSource):
    """A pydantic-settings source of the ``RHIP_…_FILE`` settings, nested ones included.

    It parses like the environment source (``__`` nesting, JSON for lists and maps), reading the values
    from the files instead of the environment.
    """

    def _load_env_vars(self) -> Mapping[str, str | None]:
        """The file-given settings, keyed as the environment source keys variables."""
        values = file_secrets(os.environ, prefix=self.env_prefix or PREFIX)
        if self.case_sensitive:
            return dict(values)
        return {name.lower(): value for name, value in values.items()}
