"""Work-arounds for the pinned Streamlit, each with the reason it exists and when to drop it."""

from __future__ import annotations


def fix_media_gzip() -> bool:
    """Let Starlette's own gzip responder handle media responses (images, zips) again.

    Streamlit 1.60's gzip middleware overrides the responder's handling of ``http.response.start``
    (to keep audio/video uncompressed) and holds that message back; Starlette >= 1.5 (FastAPI needs
    >= 1.6) then sends the body of an excluded type (image/jpeg, application/zip) without the start,
    and every such file from ``/media`` answers 500: the Embeddings page's source-video frame and
    the projector .zip never arrive. Starlette >= 1.5 excludes those types itself, which is what
    Streamlit's own fix (streamlit#16462) relies on; that release needs protobuf >= 5, which
    MediaPipe 0.10.21 refuses. Drop this with the Streamlit pin. Returns whether it patched.
    """
    try:
        from streamlit.web.server.starlette import starlette_gzip_middleware as gzip_mw
    except ImportError:  # another Streamlit layout: nothing to fix
        return False
    patched = False
    for name in ("_MediaAwareGZipResponder", "_MediaAwareIdentityResponder"):
        cls = getattr(gzip_mw, name, None)
        if cls is not None and "send_with_compression" in cls.__dict__:
            del cls.send_with_compression  # back to Starlette's, which sends the start itself
            patched = True
    return patched
