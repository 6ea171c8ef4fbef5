"""What the UI shows of a recognition result: the banner, the ranked table, the chart, the timings.

Pure functions from the engine's result (its dataclass, the API's `InferenceResponse`, or the
same thing as a dict) to Markdown, pandas tables and plotly figures, so they are tested without
a browser and the REST API and the UI describe a result the same way.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go

RANKED_COLUMNS = ["rank", "sign", "category", "similarity", "confidence", "raw similarity",
                  "prototype similarity", "DTW distance", "DTW score"]
TIMING_COLUMNS = ["stage", "ms"]

# The engine's rejection codes in plain words ({top}, {second}, values filled in when known).
REASONS = {
    "no_hands": "no hands were seen in the clip; sign with your hands in view of the camera",
    "no_person": "no person was found in the clip; face the camera with your upper body in view",
    "no_landmarks": "no person was found in the clip; face the camera with your upper body in view",
    "low_motion": "the hands hardly moved (motion {motion:.3f} is under the floor {floor})",
    "idle": "the clip looks like resting, not signing",
    "unknown_sign": "the best match {top} is only {sim:.2f} similar; at least {threshold} is needed",
    "ambiguous_margin": "{top} and {second} are too close ({sim:.2f} vs {second_sim:.2f})",
    "prototype_disagreement": "the nearest clips say {top} but the sign closest on average is {proto}",
    "low_confidence": "the classifier is not confident enough ({confidence:.0%})",
    "too_short": "the clip is too short to hold a sign",
    "empty": "the clip has no frames",
    "no_references": "there are no reference signs to compare with; enrol some in 'Add a sign'",
}

NO_SIGN_REASONS = ("no_hands", "no_person", "no_landmarks", "low_motion", "idle")


def as_dict(result: Any) -> dict:
    """The engine's result, whatever its type, as a plain dict (nested candidates too)."""
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    if hasattr(result, "model_dump"):
        return result.model_dump()
    if dataclasses.is_dataclass(result):
        return dataclasses.asdict(result)
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return dict(vars(result))


def candidates(result: dict) -> list[dict]:
    return [as_dict(c) for c in (result.get("top_k") or result.get("candidates") or [])]


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN -> None


def ranked_table(result: Any) -> pd.DataFrame:
    """One row per candidate, best first, every diagnostic rounded for reading."""
    rows = []
    for rank, cand in enumerate(candidates(as_dict(result)), start=1):
        def r(key: str, digits: int = 3, cand: dict = cand) -> float | None:
            value = _num(cand.get(key))
            return None if value is None else round(value, digits)

        rows.append({
            "rank": rank,
            "sign": cand.get("label"),
            "category": cand.get("category") or "",
            "similarity": r("similarity"),
            "confidence": r("confidence"),
            "raw similarity": r("raw_similarity"),
            "prototype similarity": r("prototype_similarity"),
            "DTW distance": r("dtw_distance"),
            "DTW score": r("dtw_score"),
        })
    return pd.DataFrame(rows, columns=RANKED_COLUMNS)


def _best_prototype(cands: list[dict]) -> str:
    """The candidate whose prototype (average embedding) is nearest, as the engine's check sees it."""
    scored = [(c.get("prototype_similarity"), c.get("label")) for c in cands
              if _num(c.get("prototype_similarity")) is not None]
    return str(max(scored)[1]) if scored else "another sign"


def explain_rejection(result: Any, thresholds: dict | None = None) -> str:
    """Why the engine said no, in words a signer understands."""
    result = as_dict(result)
    thresholds = thresholds or {}
    code = result.get("rejection_reason") or ""
    cands = candidates(result)
    top = cands[0] if cands else {}
    second = cands[1] if len(cands) > 1 else {}
    values = {
        "top": f"'{top.get('label', '?')}'",
        "second": f"'{second.get('label', '?')}'",
        "sim": _num(top.get("similarity")) or 0.0,
        "second_sim": _num(second.get("similarity")) or 0.0,
        "confidence": _num(result.get("confidence")) or 0.0,
        "motion": _num(result.get("motion")) or 0.0,
        "threshold": thresholds.get("SIM_THRESHOLD", "the threshold"),
        "floor": thresholds.get("MOTION_FLOOR", "the floor"),
        "proto": f"'{_best_prototype(cands)}'",
    }
    base = code.split(":")[0].strip()
    template = REASONS.get(base)
    if template is None:  # an unknown code: show it readably rather than hide it
        return code.replace("_", " ") or "the engine did not accept any sign"
    try:
        return template.format(**values)
    except (KeyError, ValueError):
        return template


def banner_markdown(result: Any, thresholds: dict | None = None, source: str = "") -> str:
    """The one-line verdict: the sign, or 'Not sure' / 'No sign' and why."""
    result = as_dict(result)
    cands = candidates(result)
    where = f" <span class='ss-source'>({html.escape(source)})</span>" if source else ""
    if result.get("accepted"):
        label = result.get("label") or (cands[0].get("label") if cands else "?")
        conf = _num(result.get("confidence")) or 0.0
        sim = _num(cands[0].get("similarity")) if cands else None
        detail = f"confidence {conf:.0%}" + (f", similarity {sim:.2f}" if sim is not None else "")
        return f"<div class='ss-banner ss-ok'>Recognised: <b>{html.escape(str(label))}</b> ({detail}){where}</div>"
    reason = explain_rejection(result, thresholds)
    code = (result.get("rejection_reason") or "").split(":")[0]
    if code in NO_SIGN_REASONS or not cands:
        head = "No sign"
    else:
        head = "Not sure"
    return f"<div class='ss-banner ss-no'><b>{head}</b>: {html.escape(reason)}{where}</div>"


def error_banner(message: str) -> str:
    """A readable problem with the input (shown instead of a traceback)."""
    return f"<div class='ss-banner ss-err'><b>Problem</b>: {html.escape(message)}</div>"


def info_banner(message: str) -> str:
    return f"<div class='ss-banner'>{html.escape(message)}</div>"


def success_banner(message: str) -> str:
    return f"<div class='ss-banner ss-ok'>{html.escape(message)}</div>"


def candidates_figure(result: Any, thresholds: dict | None = None) -> go.Figure:
    """Horizontal bars: refined similarity per candidate, raw cosine as a thin marker, threshold line."""
    cands = candidates(as_dict(result))
    labels = [str(c.get("label")) for c in cands][::-1]
    refined = [_num(c.get("similarity")) or 0.0 for c in cands][::-1]
    raw = [_num(c.get("raw_similarity")) for c in cands][::-1]
    accepted = bool(as_dict(result).get("accepted"))
    colours = ["#9aa0a6"] * len(labels)
    if labels:
        colours[-1] = "#1e8e3e" if accepted else "#e37400"
    fig = go.Figure()
    fig.add_bar(x=refined, y=labels, orientation="h", marker_color=colours, name="similarity",
                text=[f"{v:.2f}" for v in refined], textposition="auto")
    if any(v is not None for v in raw):
        fig.add_scatter(x=raw, y=labels, mode="markers", name="raw cosine",
                        marker={"symbol": "line-ns-open", "size": 18, "color": "#202124"})
    threshold = (thresholds or {}).get("SIM_THRESHOLD")
    if threshold is not None:
        fig.add_vline(x=float(threshold), line_dash="dash", line_color="#d93025",
                      annotation_text="threshold", annotation_position="top")
    fig.update_layout(height=90 + 36 * max(1, len(labels)), margin={"l": 10, "r": 10, "t": 30, "b": 30},
                      xaxis={"range": [min(0.0, *refined) if refined else 0.0, 1.0], "title": "similarity"},
                      showlegend=bool(labels), legend={"orientation": "h", "y": -0.3},
                      template="plotly_white")
    return fig


def timings_table(stages: dict[str, float]) -> pd.DataFrame:
    rows = [{"stage": name, "ms": round(float(ms), 1)} for name, ms in stages.items() if _num(ms) is not None]
    if rows:
        rows.append({"stage": "total", "ms": round(sum(r["ms"] for r in rows), 1)})
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def live_caption_markdown(captions: list[str], current: str, latency_ms: float | None,
                          hands: tuple[int, int] | None = None) -> str:
    """The live tab's text: the running captions, what is seen now, hands in the window, latency."""
    said = " ".join(captions[-12:]) if captions else "…"
    latency = f"{latency_ms:.0f} ms" if latency_ms is not None else "–"
    seen = f" · hands in {hands[0]} of the last {hands[1]} frames" if hands else ""
    return (f"<div class='ss-captions'>{html.escape(said)}</div>"
            f"<div class='ss-now'>now: <b>{html.escape(current)}</b>{seen} · latency {latency}</div>")
