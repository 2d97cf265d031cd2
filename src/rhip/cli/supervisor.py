"""The server process of ``rhip serve``: uvicorn's supervisor of the HTTP workers, and the writer process.

``rhip serve`` checks the database and then replaces itself with ``python -m rhip.cli.supervisor``.
uvicorn starts its workers with multiprocessing's spawn method, which imports the parent's main module
in every worker; as the main module, this one keeps the CLI's typer and rich and the migration tool out
of every server process (about 25 MB each).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import uvicorn

from rhip.bootstrap.logging import configure_logging
from rhip.bootstrap.settings import Settings
from rhip.bootstrap.writer import WriterProcess

# glibc gives each thread that allocates its own heap arena; request threads then keep freed memory in
# several arenas at once. Two arenas cost no measurable speed here and keep each process smaller.
MALLOC_ARENAS = "2"


def main() -> None:
    """Run the HTTP server with the settings of the environment until it is stopped."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    writer = None
    if (
        settings.database_url.startswith("sqlite")
        and settings.server.workers > 1
        and settings.server.writer_process
    ):
        # One process writes for all workers (see rhip.store.write_service); workers find it by this variable.
        writer = WriterProcess(settings)
        os.environ["RHIP_SERVER__WRITER_SOCKET"] = writer.start()
    metrics_dir = None
    if settings.server.workers > 1:
        # Each worker counts in its own files here and a scrape of any worker sums them all; fresh per run.
        metrics_dir = tempfile.mkdtemp(prefix="rhip-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    else:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        uvicorn.run(
            "rhip.web.app:create_app_from_env",
            factory=True,
            host=settings.server.host,
            port=settings.server.port,
            workers=settings.server.workers,
            log_config=None,
            access_log=False,
            server_header=False,
        )
    finally:
        if writer is not None:
            writer.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
