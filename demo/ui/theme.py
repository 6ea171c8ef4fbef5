"""Look of the demo: a Gradio theme and a little CSS for the verdict banner and live captions."""

from __future__ import annotations

import gradio as gr

THEME = gr.themes.Soft(primary_hue="teal", secondary_hue="amber")

CSS = """
.ss-banner { font-size: 1.25rem; padding: 0.7rem 1rem; border-radius: 10px; background: #f1f3f4; }
.ss-ok { background: #e6f4ea; color: #0d652d; }
.ss-no { background: #fef7e0; color: #7a4f01; }
.ss-err { background: #fce8e6; color: #a50e0e; }
.ss-source { font-size: 0.85rem; color: #5f6368; }
.ss-captions { font-size: 1.6rem; min-height: 2.2rem; font-weight: 600; }
.ss-now { color: #5f6368; }
"""
