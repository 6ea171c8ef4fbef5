"""Look of the demo: a Gradio theme and CSS for the verdict, the results table, examples, and
narrow screens (at 390 px every tab stays reachable and the results table keeps its key columns)."""

from __future__ import annotations

import gradio as gr

THEME = gr.themes.Soft(primary_hue="teal", secondary_hue="amber")

CSS = """
.ss-banner { font-size: 1.2rem; padding: 0.7rem 1rem; border-radius: 10px; background: #f1f3f4; color: #202124; }
.ss-ok { background: #e6f4ea; color: #0d652d; }
.ss-no { background: #fef7e0; color: #6b4500; }
.ss-err { background: #fce8e6; color: #a50e0e; }
.ss-banner + .ss-banner { margin-top: 0.5rem; }
.ss-why { font-size: 0.98rem; margin-top: 0.3rem; }
.ss-conf { font-size: 0.95rem; margin-left: 0.4rem; padding: 0.05rem 0.45rem; border-radius: 8px;
           background: rgba(255, 255, 255, 0.7); cursor: help; white-space: nowrap; }
.ss-expected { font-size: 0.95rem; margin-top: 0.35rem; }
.ss-met { color: #0d652d; font-weight: 600; }
.ss-unmet { color: #a50e0e; font-weight: 600; }
.ss-source { font-size: 0.85rem; color: #5f6368; margin-top: 0.3rem; overflow-wrap: anywhere; }
.ss-captions { font-size: 1.6rem; min-height: 2.2rem; font-weight: 600; }
.ss-now { color: #5f6368; }
table.ss-ranked { width: 100%; border-collapse: collapse; font-size: 0.95rem; }
table.ss-ranked caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
table.ss-ranked th, table.ss-ranked td { padding: 0.3rem 0.45rem; text-align: left; white-space: nowrap;
                                         border-bottom: 1px solid #e0e0e0; }
table.ss-ranked thead th { font-weight: 600; }
table.ss-ranked abbr { text-decoration: underline dotted; cursor: help; }
table.ss-ranked .ss-num { text-align: right; font-variant-numeric: tabular-nums; }
table.ss-ranked .ss-bar { display: block; height: 3px; margin-top: 2px; background: #1e8e3e; margin-left: auto; }
table.ss-ranked tr.ss-top th, table.ss-ranked tr.ss-top td { font-weight: 700; }
.ss-cat { color: #5f6368; font-weight: normal; font-size: 0.8rem; }
.ss-facts { font-size: 0.85rem; color: #5f6368; margin: 0.3rem 0; }
.ss-legend dt { font-weight: 600; margin-top: 0.3rem; }
.ss-legend dd { margin-left: 0.8rem; font-size: 0.9rem; }
.ss-empty { color: #5f6368; }
.ss-ex-row { gap: 0.35rem !important; flex-wrap: wrap !important; }
.ss-ex-row > * { flex: 0 1 auto !important; min-width: 0 !important; }
.ss-ex-head p { margin: 0.4rem 0 0.2rem; font-size: 0.9rem; }
@media (max-width: 640px) {
  .ss-wide, .ss-cat { display: none; }
  .ss-banner { font-size: 1.05rem; }
  #intro h1 { font-size: 1.45rem !important; }
}
"""

# Run once when the page loads (mount_gradio_app(js=...)). Chromium's <video> cannot play some uploads
# (HEVC from a phone, or a file that is not a video at all) and Gradio then pops up an error toast,
# "Video not playable". The page answers both cases itself, in the result banner: a playable preview
# replaces the upload, or a 'Problem' says what is wrong with the file. So that one toast is hidden;
# every other toast shows as usual. (Styles only: Gradio's own elements are never removed.)
JS = """
() => {
  const NOISE = "Video not playable";
  const tidy = () => {
    for (const body of document.querySelectorAll('[data-testid="toast-body"]')) {
      const texts = [...body.querySelectorAll('[data-testid="toast-text"]')];
      const noise = texts.filter((t) => t.textContent.trim() === NOISE);
      for (const t of noise) t.parentElement.style.display = "none";
      body.style.display = texts.length && noise.length === texts.length ? "none" : "";
    }
  };
  new MutationObserver(tidy).observe(document.body, {childList: true, subtree: true});
}
"""
