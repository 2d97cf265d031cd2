"""The server process of ``rhip serve``: uvicorn's supervisor of the HTTP workers, and the writer process.

``rhip serve`` checks the database and then replaces itself with ``python -P -m rhip.cli.supervisor``.
uvicorn starts its workers with multiprocessing's spawn method, which imports the parent's main module
in every worker; as the main module, this one keeps the CLI's typer and rich and the migration tool out
of every server process (about 25 MB each).

Exit status: 0 after a stop signal, 3 (uvicorn's startup failure) when the workers could not start, so that
a process manager restarting on failure sees one.

With ``RHIP_SERVER__TLS_CERT`` (and ``…__TLS_KEY``) the server speaks HTTPS only, TLS 1.2 or later. With
``RHIP_SERVER__TLS_CLIENT_CA`` it also asks for a client certificate signed by that CA: optional (browsers
and token clients have none), but a certificate that does not verify ends the handshake; a verified one
reaches the application in the request's ``scope["extensions"]["tls"]`` (``rhip.web.tls``).
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import sys
import tempfile
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from rhip.bootstrap.logging import configure_logging
from rhip.bootstrap.settings import ServerSettings, Settings
from rhip.bootstrap.writer import WriterProcess

# glibc gives each thread that allocates its own heap arena; request threads then keep freed memory in
# several arenas at once. Two arenas cost no measurable speed here and keep each process smaller.
MALLOC_ARENAS = "2"
APP = "rhip.web.app:create_app_from_env"
# uvicorn's HTTP protocol, adding the client certificate to the request scope (named: workers import it).
TLS_PROTOCOL = "rhip.web.tls:HttpTlsProtocol"


def tls_context(_config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's TLS context from the certificate files, refusing TLS before 1.2."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_options(server: ServerSettings) -> dict[str, Any]:
    """The TLS arguments of uvicorn's Config: none without a certificate."""
    if not server.tls_cert:
        if server.tls_key or server.tls_client_ca:
            raise ValueError("RHIP_SERVER__TLS_KEY and RHIP_SERVER__TLS_CLIENT_CA need RHIP_SERVER__TLS_CERT")
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": server.tls_cert,
        "ssl_keyfile": server.tls_key or None,
        "ssl_context_factory": tls_context,
    }
    if server.tls_client_ca:
        options |= {
            "ssl_ca_certs": server.tls_client_ca,
            "ssl_cert_reqs": ssl.CERT_OPTIONAL,
            "http": TLS_PROTOCOL,
        }
    return options


def _stop_now(signum: int, _frame: FrameType | None) -> None:
    # Until uvicorn installs its own handlers, a stop signal unwinds main() so that its cleanup runs.
    raise SystemExit(128 + signum)


def main() -> int:
    """Run the HTTP server with the settings of the environment until it is stopped; the exit status."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_now)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    writer: WriterProcess | None = None
    metrics_dir: str | None = None
    try:
        if (
            settings.database_url.startswith("sqlite")
            and settings.server.workers > 1
            and settings.server.writer_process
        ):
            # One process writes for all workers (see rhip.store.write_service); they find it by this variable.
            writer = WriterProcess(settings)
            os.environ["RHIP_SERVER__WRITER_SOCKET"] = writer.start()
        if settings.security.audit_appender == "auto":
            # A server's read audits are built and chained by a process of their own (see
            # rhip.security.audit.appender): each worker starts its appender with its first batch.
            os.environ["RHIP_SECURITY__AUDIT_APPENDER"] = "process"
        if settings.server.workers > 1:
            # Each worker counts in its own files here and a scrape of any worker sums them all; fresh per run.
            metrics_dir = tempfile.mkdtemp(prefix="rhip-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        else:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return _serve(settings)
    finally:
        if writer is not None:
            writer.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings: Settings) -> int:
    """uvicorn's own run(), keeping the supervisor to tell a stop from workers that never started."""
    config = uvicorn.Config(
        APP,
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_config=None,
        access_log=False,
        server_header=False,
        **tls_options(settings.server),
    )
    if config.workers > 1:
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
        return STARTUP_FAILURE if failed else 0
    config.load_app()
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
