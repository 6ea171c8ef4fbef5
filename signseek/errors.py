"""One base error for everything SignSeek refuses, with a machine-readable code.

    from signseek.errors import SignSeekError
    try:
        ...
    except SignSeekError as exc:
        exc.code      # stable machine code: "invalid_video", "video_too_long", "no_person", ...
        exc.kind      # what sort of problem: one of KINDS (the API edge maps a kind to an HTTP status)
        str(exc)      # the message: what is wrong and what to do about it

The core never speaks HTTP. `demo/api/errors.py` turns a kind into a status code, once, at the
edge; the CLIs print the message; the UI shows it. Every domain exception subclasses
`SignSeekError` (and keeps its old builtin base, e.g. ValueError, so callers are unaffected).
"""

from __future__ import annotations

# What sort of problem an error is. The API maps each to one HTTP status (see demo/api/errors.py).
KINDS = (
    "invalid",       # the input is wrong: fix it and retry (422)
    "too_large",     # the input is over a size or length limit (413)
    "not_found",     # the named thing does not exist (404)
    "conflict",      # the request clashes with what is stored (409)
    "unauthorized",  # a key is needed and was missing or wrong (401)
    "forbidden",     # no key allows this here (403)
    "rate_limited",  # too many requests from this client (429)
    "busy",          # the server is at capacity: retry later (503 + Retry-After)
    "unavailable",   # something on the server side failed (503)
)


class SignSeekError(Exception):
    """A request SignSeek refuses or cannot serve; ``code`` names it, the message says what to fix.

    Subclasses set class defaults for ``code`` and ``kind``; an instance may override either.
    """

    code: str = "error"
    kind: str = "invalid"

    def __init__(self, message: str = "", *, code: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if kind is not None:
            if kind not in KINDS:
                raise ValueError(f"unknown error kind {kind!r}; one of {KINDS}")
            self.kind = kind

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code
