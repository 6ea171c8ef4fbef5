"""The Gradio UI of the demo: `build_ui(backend)` -> gr.Blocks (mounted on the API by demo.server)."""

from .backend import DemoBackend, DemoInputError, LiveSession, Outcome
from .blocks import build_ui

__all__ = ["DemoBackend", "DemoInputError", "LiveSession", "Outcome", "build_ui"]
