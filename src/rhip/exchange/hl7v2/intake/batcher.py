"""The asynchronous front of the v2 pipeline: messages from every connection, a batch at a time.

Each connection has at most one message waiting for its ACK (original mode), so a batch holds at most one
message per connection and the order of each connection is kept. While a batch is being committed the
next one gathers; when the system is idle the first message waits up to ``linger_s`` for the other open
connections' messages, so that one commit (one fsync) serves all of them. The pipeline runs in one
thread of its own: the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from rhip.exchange.hl7v2.intake.faults import log_fault
from rhip.exchange.hl7v2.intake.messages import Answer, Inbound
from rhip.exchange.hl7v2.pipeline import V2Pipeline

log = logging.getLogger("rhip.exchange.v2")


class BatchingIntake:
    """Gathers inbound messages into batches for a ``V2Pipeline`` and hands each its answer."""

    def __init__(self, pipeline: V2Pipeline, *, linger_s: float = 0.002, batch_max: int = 64) -> None:
        self.pipeline = pipeline
        self.linger_s = linger_s
        self.batch_max = max(1, batch_max)
        self.connections = 0  # open connections (the server counts them), the most a batch can gather
        self.batches = 0
        self.messages = 0
        self._pending: list[tuple[Inbound, asyncio.Future[Answer]]] = []
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="rhip-v2-intake")

    async def start(self) -> None:
        """Start gathering (in the running event loop)."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._full = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rhip-v2-intake")

    async def receive(self, item: Inbound) -> Answer:
        """The answer to one message, once its batch has been processed."""
        if self._task is None:
            await self.start()
        if self._closing:
            raise RuntimeError("the v2 intake is stopping")
        assert self._wake is not None and self._full is not None
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        if len(self._pending) >= self._target():
            self._full.set()
        return await future

    async def close(self) -> None:
        """Answer what is pending, then stop."""
        self._closing = True
        if self._task is not None and self._wake is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    def _target(self) -> int:
        return min(self.batch_max, max(self.connections, 1))

    async def _run(self) -> None:
        assert self._wake is not None and self._full is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if not self._pending:
                self._wake.clear()
                if self._closing:
                    return
                continue
            if self.linger_s > 0 and len(self._pending) < self._target() and not self._closing:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.linger_s)
            batch = self._pending[: self.batch_max]
            del self._pending[: len(batch)]
            if not self._pending:
                self._wake.clear()
            items = [item for item, _ in batch]
            try:
                answers = await loop.run_in_executor(self._executor, self.pipeline.process, items)
            except BaseException as exc:  # never leave a connection waiting
                for _, future in batch:
                    if not future.done():
                        future.set_exception(
                            RuntimeError("the v2 intake stopped")
                            if isinstance(exc, asyncio.CancelledError)
                            else exc
                        )
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log_fault(log, "v2 batch failed", exc)
                continue
            self.batches += 1
            self.messages += len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
