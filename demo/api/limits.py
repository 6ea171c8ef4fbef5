"""Bounded work per request, decided before the work.

* `WorkQueue`: at most ``workers`` at work and ``waiting`` more in line (each waits at most
  ``wait_s``); anything beyond is refused at once with `Busy` (503 + Retry-After). The clip
  extraction (one MediaPipe graph) and JSON parsing use one each.
* `RateLimiter`: a token bucket per client (RATE_LIMIT_* requests a minute; `RateLimited`, 429 +
  Retry-After), over a bounded table of clients.
* `GuardMiddleware` (pure ASGI, in front of everything, Gradio included): the body caps
  (MAX_JSON_MB for the JSON routes, MAX_UPLOAD_MB for the rest; a declared Content-Length over
  the cap is refused before a byte is read, a chunked body is cut off as it passes the cap),
  the per-client rate limits of the expensive routes, and a place in the extraction queue for
  a clip upload taken before its body is read (503 + Retry-After when there is none).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from anyio import CapacityLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, Busy, RateLimited, describe, error_response


class WorkQueue:
    """``workers`` at once, ``waiting`` more in line, the rest refused with Busy (503 + Retry-After).

        ticket = queue.admit()          # never blocks: Busy when workers + waiting are all taken
        ticket.run(fn, *args)           # waits (at most wait_s) for a worker slot, runs fn, frees it
        with queue:                     # the same in one step, for code in a worker thread
            ...
    """

    def __init__(self, name: str, what: str, workers: int, waiting: int, wait_s: float, retry_after: int) -> None:
        self.name = name
        self.what = what  # "clip extraction", in messages
        self.workers = workers
        self.capacity = workers + waiting
        self.wait_s = wait_s
        self.retry_after = retry_after
        self._slots = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self._admitted = 0
        self.refused = 0
        # Threads a queue may use for async callers: its own, so it never starves the default pool.
        self.limiter = CapacityLimiter(self.capacity)
        self._held = threading.local()  # the ticket of the thread inside ``with queue:``

    @property
    def admitted(self) -> int:
        return self._admitted

    @property
    def full(self) -> bool:
        return self._admitted >= self.capacity

    def _busy(self, why: str) -> Busy:
        return Busy(f"the server is busy with {self.what} ({why}); try again in {self.retry_after} s",
                    retry_after=self.retry_after, code="busy")

    def admit(self) -> _Ticket:
        with self._lock:
            if self._admitted >= self.capacity:
                self.refused += 1
                raise self._busy(f"{self.workers} at work, {self.capacity - self.workers} waiting")
            self._admitted += 1
        return _Ticket(self)

    def _release_admission(self) -> None:
        with self._lock:
            self._admitted -= 1

    def __enter__(self) -> WorkQueue:
        ticket = self.admit()
        ticket.acquire()
        self._held.ticket = ticket
        return self

    def __exit__(self, *exc) -> None:
        self._held.ticket.release()


class _Ticket:
    def __init__(self, queue: WorkQueue) -> None:
        self.queue = queue
        self._working = False
        self._done = False

    def acquire(self) -> None:
        if not self.queue._slots.acquire(timeout=self.queue.wait_s):
            self.release()
            raise self.queue._busy(f"waited {self.queue.wait_s:g} s in line")
        self._working = True

    def release(self) -> None:
        if self._done:
            return
        self._done = True
        if self._working:
            self.queue._slots.release()
        self.queue._release_admission()

    @contextmanager
    def held(self):
        """Hold a worker slot for the block (waiting for it at most wait_s, Busy after); a ticket
        already holding one keeps it. The ticket's owner releases it (`release`)."""
        if not self._working:
            self.acquire()
        yield self

    def run(self, fn: Callable, *args):
        try:
            self.acquire()
            return fn(*args)
        finally:
            self.release()


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, client: str, now: float | None = None) -> float:
        """Take one token for ``client``: 0.0 when allowed, else the seconds until one is free."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:  # forget the longest-idle clients
                self._buckets.popitem(last=False)
            return wait


@dataclass(frozen=True)
class Rule:
    """What the guard applies to one kind of request."""

    limiter: str | None  # a RateLimiter's name, or None
    max_bytes_setting: str  # "MAX_JSON_MB" or "MAX_UPLOAD_MB"
    extraction: bool = False  # a clip upload: refused while the extraction queue is full


_SIGN = re.compile(r"^/v1/signs/[^/]+$")
_GRADIO_WRITE = re.compile(r"^/gradio_api/(call|run)/(enrol_sign|delete_sign)(/|$)")


def classify(method: str, path: str) -> Rule:
    if method == "POST":
        if path == "/v1/inference":
            return Rule("inference", "MAX_JSON_MB")
        if path == "/v1/inference/video":
            return Rule("video", "MAX_UPLOAD_MB", extraction=True)
        if path == "/v1/signs":
            return Rule("write", "MAX_JSON_MB")
        if path == "/v1/signs/video":
            return Rule("write", "MAX_UPLOAD_MB", extraction=True)
        if path == "/v1/references/export":
            return Rule("write", "MAX_JSON_MB")
        if path == "/gradio_api/upload":
            return Rule("video", "MAX_UPLOAD_MB")
        if _GRADIO_WRITE.match(path):
            return Rule("write", "MAX_JSON_MB")
    elif method == "DELETE" and _SIGN.match(path):
        return Rule("write", "MAX_JSON_MB")
    return Rule(None, "MAX_UPLOAD_MB")


EXTRACT_TICKET = "extract_ticket"  # request.state key: the extraction queue place the guard took


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class GuardMiddleware:
    """Body caps, per-client rate limits, and early 503s for clip uploads (see the module)."""

    def __init__(self, app: ASGIApp, service) -> None:
        self.app = app
        self.service = service
        s = service.settings
        self.limiters = {
            "inference": RateLimiter(s.RATE_LIMIT_INFERENCE),
            "video": RateLimiter(s.RATE_LIMIT_VIDEO),
            "write": RateLimiter(s.RATE_LIMIT_WRITE),
        }
        self.caps = {"MAX_JSON_MB": int(s.MAX_JSON_MB * 2**20), "MAX_UPLOAD_MB": int(s.MAX_UPLOAD_MB * 2**20)}

    async def _refuse(self, exc, scope: Scope, receive: Receive, send: Send) -> None:
        status, code, message, headers = describe(exc)
        await error_response(status, code, message, headers)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = classify(scope.get("method", "GET"), scope.get("path", ""))
        max_bytes = self.caps[rule.max_bytes_setting]
        if rule.limiter is not None:
            limiter = self.limiters[rule.limiter]
            wait = limiter.hit(client_key(scope))
            if wait > 0:
                retry = max(1, int(wait + 0.999))
                exc = RateLimited(f"too many requests of this kind from your address: at most {limiter.per_minute} a "
                                  f"minute (RATE_LIMIT_{rule.limiter.upper()}); try again in {retry} s",
                                  retry_after=retry)
                await self._refuse(exc, scope, receive, send)
                return
        ticket = None
        if rule.extraction:  # a place in the extraction queue is taken before the upload is read
            try:
                ticket = self.service.extract_queue.admit()
            except Busy as exc:
                await self._refuse(exc, scope, receive, send)
                return
            scope.setdefault("state", {})[EXTRACT_TICKET] = ticket
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > max_bytes:
                    await self._refuse(BodyTooLarge(max_bytes, rule.max_bytes_setting), scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes, rule.max_bytes_setting)
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            if ticket is not None:
                ticket.release()


class BodyTooLarge(ApiError):
    def __init__(self, limit: int, setting: str = "MAX_UPLOAD_MB") -> None:
        super().__init__(413, "payload_too_large",
                         f"the request body is too large: over {setting} ({limit / 2**20:g} MB); send a smaller body")
