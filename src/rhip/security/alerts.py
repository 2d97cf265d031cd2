"""Break-the-glass alerts: every emergency access is logged as a warning and, when configured, posted to
an alerting endpoint (the commission's duty desk) from a background thread."""

from __future__ import annotations

import logging
import queue
import threading
import urllib.request
from typing import Any

import orjson

from rhip.security.audit.redaction import redact_query, safe_text
from rhip.security.principal import Principal

log = logging.getLogger("rhip.security.alerts")


class GlassAlerts:
    """Raises an alert for each break-the-glass access (ids only: no names or ID numbers)."""

    def __init__(self, url: str | None = None, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.sent: list[dict[str, Any]] = []  # the alerts of this process, newest last (bounded)
        self._lock = threading.Lock()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None

    def raise_alert(self, principal: Principal, patient: str | None, reason: str, what: str) -> None:
        """Alert that ``principal`` broke the glass on ``patient``'s record for ``reason``."""
        alert = {
            "type": "break-the-glass",
            "subject": principal.subject,
            "institution": principal.institution,
            "patient": patient,
            "resource": redact_query(what),  # ids only: the values of names and identifiers are hidden
            "reason": safe_text(reason),  # free text: ID and phone numbers masked
        }
        log.warning("break-the-glass access", extra={"subject": principal.subject, "patient": patient})
        with self._lock:
            self.sent.append(alert)
            del self.sent[:-1000]
        if self.url:
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                log.error("break-the-glass alert queue is full; the alert is in the audit log only")
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._post_forever, name="rhip-glass-alerts", daemon=True)
            self._thread.start()

    def _post_forever(self) -> None:
        assert self.url is not None
        while True:
            alert = self._queue.get()
            request = urllib.request.Request(  # noqa: S310 -- the operator configures an http(s) URL
                self.url,
                data=orjson.dumps(alert),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s):  # noqa: S310
                    pass
            except OSError as exc:
                log.error("break-the-glass alert could not be posted", extra={"error": type(exc).__name__})
