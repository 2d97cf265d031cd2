"""Settings from files: ``RHIP_X_FILE=/run/secrets/x`` gives setting ``RHIP_X`` the content of that file.

The convention of Docker and Kubernetes secrets (a secret mounted as a file, its path in the environment),
so that a database password or a key passphrase never appears in the environment, in ``docker inspect``
or in a process listing. Every ``RHIP_…`` setting can be given this way, nested ones too
(``RHIP_SECURITY__OIDC_AUDIENCE_FILE``). One trailing line break is dropped (editors and ``echo`` add it).

A setting given both ways is an error unless both say the same (a wrong secret must not win silently).
Errors name the variable and the file, never what the file holds; values are never logged.

Settings whose values are file paths (``security.signing_key``, ``server.tls_key`` and the other key,
certificate and CA files, ``security.keys_dir``) cannot be given this way: ``RHIP_SERVER__TLS_KEY_FILE``
would make the key's PEM content the "path" (and echo it in every error about that path). Name the file
itself instead: ``RHIP_SERVER__TLS_KEY=/run/secrets/tls.key``. A whole section given as a JSON file
(``RHIP_SERVER_FILE``) may not hold them either.

``FileSecretsSource`` is a pydantic-settings source for ``Settings.settings_customise_sources``: the
values go straight into the settings, never into ``os.environ`` (which every child process inherits).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import orjson
from pydantic_settings.sources import EnvSettingsSource

SUFFIX = "_FILE"
PREFIX = "RHIP_"
MAX_BYTES = 1024 * 1024  # a secret, a key or a certificate; not /dev/zero


# Settings holding file paths (nested names as in the environment, lower case, "__" between levels).
PATH_SETTINGS = frozenset(
    {
        "security__signing_key",
        "security__signing_cert",
        "security__ca_bundle",
        "security__keys_dir",
        "server__tls_cert",
        "server__tls_key",
        "server__tls_client_ca",
        "exchange__mllp__tls_cert",
        "exchange__mllp__tls_key",
        "exchange__mllp__tls_client_ca",
    }
)


class SecretFileError(ValueError):
    """A ``…_FILE`` variable names a file that cannot be read, conflicts with its plain variable, or gives
    a setting that is itself a file path."""


def _refuse_path_setting(variable: str, setting: str) -> SecretFileError:
    dotted = setting.replace("__", ".")
    plain = variable[: -len(SUFFIX)]
    return SecretFileError(
        f"{variable}: {dotted} is itself a file path, so it cannot be read from a file; "
        f"set {plain}=<path of the file> instead"
    )


def _check_section(variable: str, section: str, text: str) -> None:
    """Refuse a section given as a JSON file (``RHIP_SERVER_FILE``) that sets a file-path setting."""
    nested = [p for p in PATH_SETTINGS if p.startswith(section + "__")]
    if not nested:
        return
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return  # not JSON: the settings will refuse it, without quoting it
    for path in nested:
        node: object = value
        for part in path[len(section) + 2 :].split("__"):
            node = (
                next((v for k, v in node.items() if str(k).lower() == part), None)
                if isinstance(node, dict)
                else None
            )
        if node is not None:
            raise _refuse_path_setting(variable, path)


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
        setting = upper[len(prefix) : -len(SUFFIX)].lower()
        if setting in PATH_SETTINGS:
            raise _refuse_path_setting(variable, setting)  # before reading: its content must go nowhere
        value = _read(variable, path)
        _check_section(variable, setting, value)
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
