"""Micro-batching: concurrent requests share one encoder call.

Callers announce themselves (`with batcher.expect() as ticket`) before they start preparing their
input, then `ticket.submit(item)`. A worker thread takes what is queued and, while announced
callers have not submitted yet, waits for them (at most ``max_wait_ms``, at most ``max_size``
items), then makes one call for the whole batch and hands each caller its own result.

A caller alone (nobody else announced, nothing queued) runs the call in its own thread at once:
the single-request path pays neither a wait nor a thread hand-off.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any


class _Ticket:
    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher
        self.pending = True  # announced, not submitted yet

    def submit(self, item: Any) -> Any:
        """Queue ``item`` (or run it at once when alone) and wait for its result."""
        return self._batcher._submit(item, self).result()


class MicroBatcher:
    def __init__(self, fn: Callable[[Sequence[Any]], Sequence[Any]], max_size: int = 16,
                 max_wait_ms: float = 2.0) -> None:
        self.fn = fn  # list of items -> list of results, same order
        self.max_size = max(1, int(max_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self._cond = threading.Condition()
        self._queue: deque[tuple[Any, Future]] = deque()
        self._announced = 0
        self._busy = 0
        self._worker: threading.Thread | None = None
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # recent batch sizes, for stats and tests

    @contextmanager
    def expect(self):
        ticket = _Ticket(self)
        with self._cond:
            self._announced += 1
        try:
            yield ticket
        finally:
            if ticket.pending:  # left without submitting (e.g. a gate rejected the clip)
                with self._cond:
                    self._announced -= 1
                    ticket.pending = False
                    self._cond.notify_all()

    def __call__(self, item: Any) -> Any:
        with self.expect() as ticket:
            return ticket.submit(item)

    def _submit(self, item: Any, ticket: _Ticket) -> Future:
        future: Future = Future()
        with self._cond:
            if ticket.pending:
                self._announced -= 1
                ticket.pending = False
            alone = not self._queue and self._announced == 0 and self._busy == 0
            if alone:
                self._busy += 1
            else:
                self._queue.append((item, future))
                self._ensure_worker()
                self._cond.notify_all()
        if alone:
            try:
                self._run([(item, future)])
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
        return future

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, name="signseek-batcher", daemon=True)
            self._worker.start()

    def _run(self, batch: list[tuple[Any, Future]]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = self.fn([item for item, _ in batch])
        except BaseException as exc:  # every caller of the batch gets the error
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                deadline = time.monotonic() + self.max_wait
                while len(self._queue) < self.max_size and self._announced > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = [self._queue.popleft() for _ in range(min(self.max_size, len(self._queue)))]
                self._busy += 1
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
