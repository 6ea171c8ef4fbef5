"""What the UI shows of a recognition result: the verdict, the ranked table, the chart, the timings.

Pure functions from the engine's result (its dataclass, the API's `InferenceResponse`, or the
same thing as a dict) to HTML, pandas tables and plotly figures, so they are tested without a
browser. `read_result` is the one place that reads a result, whatever its shape (the API's
`results` list, an older `top_k` list, the engine's `candidates`); everything else reads what
it returns.

The words come from `signseek.ranker.Reason` (`.explain`), the numbers from the result; every
number shown has a legend entry (`LEGEND`) and a tooltip.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from signseek.ranker import Reason

RANKED_COLUMNS = ["rank", "sign", "category", "similarity", "raw similarity", "prototype similarity",
                  "DTW distance", "DTW score"]
TIMING_COLUMNS = ["stage", "ms"]

# What every number means, in plain words (tooltips, the legend under the table, the About tab).
LEGEND = {
    "confidence": "The engine's estimate that its top answer is right (0-100%). One number for the "
                  "whole answer; rejected answers may still have one.",
    "similarity": "How alike your clip and the sign are, 1 = the same movement. The ranking score: "
                  "mostly the model's cosine, blended with the DTW score.",
    "raw similarity": "Cosine between your clip's embedding and the sign's closest reference clip, "
                      "before the DTW blend (-1 to 1). The best one decides whether the clip is a known sign at all: "
                      "below the threshold (dashed line in the chart) it probably is not.",
    "prototype similarity": "Cosine between your clip and the sign's average clip (its prototype), -1 to 1. "
                            "Below 0 means unlike that sign on average: normal for signs far from yours.",
    "DTW distance": "Frame-by-frame distance to the closest reference clip after lining up the timing "
                    "(dynamic time warping). Lower is closer: about 0.3 for the same sign, 0.6 for another. "
                    "Only the closest few signs are re-checked this way: '–' for the others.",
    "DTW score": "The DTW distance turned into a 0-1 score (1 = identical), the part blended into similarity.",
    "margin": "The top sign's similarity minus the next sign's. Too small a margin means 'not sure'.",
    "known sign": "How likely the clip is one of the signs this deployment knows at all (0-100%), from how "
                  "close its best match is. Low means 'not a sign it knows'.",
    "motion": "How much the wrists and hands moved, in shoulder widths a frame. Under the motion floor "
              "means nobody was signing.",
}


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


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN -> None


def _candidate(raw: Any) -> dict:
    c = as_dict(raw)
    proto = c.get("prototype_similarity", c.get("proto_similarity"))
    return {
        "label": str(c.get("label") if c.get("label") is not None else c.get("sentence", "?")),
        "category": c.get("category") or "",
        "similarity": _num(c.get("similarity")),
        "confidence": _num(c.get("confidence")),
        "raw_similarity": _num(c.get("raw_similarity")),
        "prototype_similarity": _num(proto),
        "dtw_distance": _num(c.get("dtw_distance")),
        "dtw_score": _num(c.get("dtw_score")),
    }


def read_result(result: Any) -> dict:
    """The one reader of a result: a flat dict with every field the page uses, whatever the shape."""
    r = as_dict(result)
    cands = r.get("results")
    if not isinstance(cands, list):
        cands = r.get("top_k") if isinstance(r.get("top_k"), list) else r.get("candidates")
    diag = dict(r.get("diagnostics") or {})
    for key in ("margin", "prototype_label", "idle_similarity", "hand_frames", "n_frames", "kept", "p_known",
                "unknown_score"):
        if key in r and key not in diag:
            diag[key] = r[key]
    code = str(r.get("rejection_reason") or "none").split(":")[0].strip() or "none"
    return {
        "label": r.get("label"),
        "accepted": bool(r.get("accepted")),
        "reason": code,
        "confidence": _num(r.get("confidence")),
        "candidates": [_candidate(c) for c in (cands or [])],
        "motion": _num(r.get("motion")),
        "margin": _num(diag.get("margin")),
        "prototype_label": diag.get("prototype_label"),
        "idle_similarity": _num(diag.get("idle_similarity")),
        "hand_frames": diag.get("hand_frames"),
        "n_frames": diag.get("n_frames"),
        "kept": diag.get("kept"),
        "p_known": _num(diag.get("p_known")),
        "unknown_score": _num(diag.get("unknown_score")),
        "model": r.get("model") or "encoder",
        "expected": r.get("expected"),
    }


def candidates(result: Any) -> list[dict]:
    return read_result(result)["candidates"]


def _reason(code: str) -> Reason | None:
    try:
        return Reason(code)
    except ValueError:
        return None


def _q(label: Any) -> str:
    return f"'{label}'"


def _f(value: float | None, digits: int = 2) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def explain_rejection(result: Any, thresholds: dict | None = None) -> str:
    """Why the engine said no: `Reason.explain`, then the numbers behind it."""
    r = read_result(result)
    thresholds = thresholds or {}
    code = r["reason"]
    reason = _reason(code)
    if reason is None:  # a code this UI does not know yet: shown readably rather than hidden
        return code.replace("_", " ") or "the engine did not accept any sign"
    cands = r["candidates"]
    top = cands[0] if cands else {}
    second = cands[1] if len(cands) > 1 else {}
    words = reason.explain
    frames = f"{r['n_frames']}" if r["n_frames"] is not None else "the"
    if reason is Reason.NO_HANDS:
        return f"{words} (of {frames} frames): sign with your hands in view of the camera"
    if reason is Reason.LOW_MOTION:
        floor = thresholds.get("MOTION_FLOOR")
        return f"{words}: motion {_f(r['motion'], 4)}" + (f" is under the floor {floor}" if floor is not None else "")
    if reason is Reason.IDLE:
        hands = r["hand_frames"]
        detail = words
        if hands:  # hands were drawn: say why it is still "resting"
            detail += (f". Hands were seen in {hands} of {frames} frames, but the movement matched the resting "
                       f"(no sign) clips at {_f(r['idle_similarity'])}, better than any sign")
            if top:
                detail += f" (best: {_q(top['label'])} at {_f(top['similarity'])})"
            detail += ". Sign a little larger or longer, or start with your hands already up"
        return detail
    if reason is Reason.UNKNOWN_SIGN:
        if r["p_known"] is not None:  # the decision rule with an unknown-score (calibrated)
            need = thresholds.get("MIN_CONFIDENCE")
            return (f"{words}. Its best match {_q(top.get('label', '?'))} (cosine {_f(top.get('raw_similarity'))}) "
                    f"makes it {_pct(r['p_known'])} likely to be a known sign; confidence {_pct(r['confidence'])}"
                    + (f", at least {_pct(_num(need))} is needed" if need is not None else ""))
        need = thresholds.get("SIM_THRESHOLD")
        return (f"{words}. The best match {_q(top.get('label', '?'))} is {_f(top.get('similarity'))} similar"
                + (f"; at least {need} is needed" if need is not None else ""))
    if reason is Reason.AMBIGUOUS:
        need = thresholds.get("SIM_MARGIN")
        gap = r["margin"] if r["margin"] is not None else (
            (top.get("similarity") or 0) - (second.get("similarity") or 0) if second else None)
        text = (f"{words}: {_q(top.get('label', '?'))} and {_q(second.get('label', '?'))} are too close "
                f"({_f(top.get('similarity'))} vs {_f(second.get('similarity'))}, a margin of {_f(gap, 3)}")
        low = thresholds.get("MIN_CONFIDENCE")
        if r["p_known"] is not None and low is not None and (r["confidence"] or 0) < float(low):
            return text + f"; confidence {_pct(r['confidence'])}, at least {_pct(_num(low))} is needed)"
        return text + (f"; at least {need} is needed)" if need is not None else ")")
    if reason is Reason.PROTOTYPE_DISAGREEMENT:
        proto = r["prototype_label"] or _best_prototype(cands)
        return (f"{words}: the nearest clips say {_q(top.get('label', '?'))} ({_f(top.get('similarity'))}) "
                f"but on average the clip is closest to {_q(proto)}")
    if reason is Reason.LOW_CONFIDENCE:
        need = thresholds.get("CLASSIFIER_MIN_CONFIDENCE")
        return (f"{words} ({_pct(r['confidence'])}"
                + (f"; at least {_pct(_num(need))} is needed)" if need is not None else ")"))
    return words


def _best_prototype(cands: list[dict]) -> str:
    scored = [(c["prototype_similarity"], c["label"]) for c in cands if c["prototype_similarity"] is not None]
    return str(max(scored)[1]) if scored else "another sign"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def verdict(result: Any, thresholds: dict | None = None) -> tuple[str, str, str]:
    """(kind, headline, detail): kind is "ok" (a sign), "unsure" (signing, but no answer) or "none"."""
    r = read_result(result)
    cands = r["candidates"]
    if r["accepted"]:
        label = r["label"] or (cands[0]["label"] if cands else "?")
        sim = cands[0]["similarity"] if cands else None
        detail = f"similarity {_f(sim)}" if sim is not None else ""
        if r["margin"] is not None and len(cands) > 1:
            detail += f", ahead of {_q(cands[1]['label'])} by {_f(r['margin'], 3)}"
        return "ok", f"Recognised: {label}", detail
    reason = _reason(r["reason"])
    detail = explain_rejection(result, thresholds)
    if (reason is not None and reason.no_sign) or not cands:
        return "none", "No sign", detail
    if reason is Reason.UNKNOWN_SIGN:
        return "unsure", "Not a sign it knows", detail
    return "unsure", "Not sure", detail


def _expectation(r: dict) -> str:
    """For a built-in example: what it should give, and whether it did."""
    expected = r["expected"]
    if not expected:
        return ""
    if expected in ("-", "idle"):
        wanted, met = "no sign (resting)", not r["accepted"]
    elif expected == "reject":
        wanted, met = "rejected (not a sign it knows)", not r["accepted"]
    else:
        wanted, met = _q(expected), r["accepted"] and r["label"] == expected
    mark = "<span class='ss-met'>✓ as expected</span>" if met else "<span class='ss-unmet'>✗ not what it should give</span>"
    return f"<div class='ss-expected'>Should give: <b>{html.escape(wanted)}</b> · {mark}</div>"


def banner_markdown(result: Any, thresholds: dict | None = None, source: str = "") -> str:
    """The verdict: one headline, one sentence why (with the numbers), one confidence."""
    r = read_result(result)
    kind, headline, detail = verdict(result, thresholds)
    css = {"ok": "ss-ok", "unsure": "ss-no", "none": "ss-no"}[kind]
    conf = r["confidence"]
    confidence = ""
    if conf is not None and (r["accepted"] or conf > 0):
        confidence = (f" <span class='ss-conf' title='{html.escape(LEGEND['confidence'], quote=True)}'>"
                      f"confidence {_pct(conf)}</span>")
    where = f"<div class='ss-source'>{html.escape(source)}</div>" if source else ""
    head = html.escape(headline)
    if kind == "ok":  # the sign in bold
        prefix, _, label = headline.partition(": ")
        head = f"{html.escape(prefix)}: <b>{html.escape(label)}</b>"
    elif kind != "ok":
        head = f"<b>{head}</b>"
    return (f"<div class='ss-banner {css}' role='status'>{head}{confidence}"
            f"<div class='ss-why'>{html.escape(detail)}</div>{_expectation(r)}{where}</div>")


def error_banner(message: str) -> str:
    """A readable problem with the input (shown instead of a traceback)."""
    return f"<div class='ss-banner ss-err' role='alert'><b>Problem</b>: {html.escape(message)}</div>"


def info_banner(message: str) -> str:
    return f"<div class='ss-banner'>{html.escape(message)}</div>"


def success_banner(message: str) -> str:
    return f"<div class='ss-banner ss-ok' role='status'>{html.escape(message)}</div>"


def warning_banner(message: str) -> str:
    return f"<div class='ss-banner ss-no' role='status'>{html.escape(message)}</div>"


def ranked_table(result: Any) -> pd.DataFrame:
    """One row per candidate, best first, every diagnostic rounded for reading (all scores)."""
    rows = []
    for rank, c in enumerate(candidates(result), start=1):
        def r(key: str, digits: int = 3, c: dict = c) -> float | None:
            return None if c[key] is None else round(c[key], digits)

        rows.append({"rank": rank, "sign": c["label"], "category": c["category"], "similarity": r("similarity"),
                     "raw similarity": r("raw_similarity"), "prototype similarity": r("prototype_similarity"),
                     "DTW distance": r("dtw_distance"), "DTW score": r("dtw_score")})
    return pd.DataFrame(rows, columns=RANKED_COLUMNS)


def _th(name: str, text: str | None = None, extra: str = "") -> str:
    tip = html.escape(LEGEND[name], quote=True)
    return f"<th scope='col' class='{extra}' title='{tip}'><abbr title='{tip}'>{html.escape(text or name)}</abbr></th>"


def ranked_html(result: Any, thresholds: dict | None = None) -> str:
    """The ranked candidates as an accessible table with a tooltip on every heading and a legend.

    Narrow screens (the `ss-wide` columns hide under 640 px) keep rank, sign and similarity.
    """
    cands = candidates(result)
    if not cands:
        return "<p class='ss-empty'>No candidates: nothing was compared (see the verdict above).</p>"
    r = read_result(result)
    rows = []
    for rank, c in enumerate(cands, start=1):
        top = rank == 1
        cls = " class='ss-top'" if top else ""
        sim = c["similarity"]
        bar = (f"<span class='ss-bar' style='width:{max(0.0, min(1.0, sim or 0)) * 100:.0f}%'></span>"
               if sim is not None else "")
        rows.append(
            f"<tr{cls}><td>{rank}</td><th scope='row'>{html.escape(c['label'])}"
            f"<span class='ss-cat'> {html.escape(c['category'])}</span></th>"
            f"<td class='ss-num'>{_f(sim)}{bar}</td>"
            f"<td class='ss-num ss-wide'>{_f(c['raw_similarity'])}</td>"
            f"<td class='ss-num ss-wide'>{_f(c['prototype_similarity'])}</td>"
            + _dtw_cell(c["dtw_distance"]) + "</tr>")
    threshold = (thresholds or {}).get("SIM_THRESHOLD")
    legend_items = ["similarity", "raw similarity", "prototype similarity", "DTW distance", "confidence",
                    "known sign", "margin"]
    legend = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(LEGEND[k])}</dd>" for k in legend_items)
    extra = []
    if threshold is not None:
        extra.append(f"threshold {float(threshold):.2f} (cosine)")
    if r["p_known"] is not None:
        extra.append(f"known sign {_pct(r['p_known'])}")
    if r["margin"] is not None:
        extra.append(f"margin {_f(r['margin'], 3)}")
    if r["motion"] is not None:
        extra.append(f"motion {_f(r['motion'], 4)}")
    facts = f"<p class='ss-facts'>{html.escape(' · '.join(extra))}</p>" if extra else ""
    return (
        "<table class='ss-ranked'><caption>Closest signs, best first</caption><thead><tr>"
        "<th scope='col'>#</th><th scope='col'>sign</th>"
        + _th("similarity") + _th("raw similarity", "cosine", "ss-wide")
        + _th("prototype similarity", "vs average", "ss-wide") + _th("DTW distance", "DTW dist.", "ss-wide")
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + facts
        + f"<details class='ss-legend'><summary>What the numbers mean</summary><dl>{legend}</dl></details>"
    )


NOT_RECHECKED = "Not computed: DTW re-checks only the closest few signs."


def _dtw_cell(distance: float | None) -> str:
    if distance is None:
        return f"<td class='ss-num ss-wide' title='{html.escape(NOT_RECHECKED, quote=True)}'>–</td>"
    return f"<td class='ss-num ss-wide'>{_f(distance)}</td>"


def candidates_figure(result: Any, thresholds: dict | None = None) -> go.Figure | None:
    """Horizontal bars: similarity per candidate, raw cosine as a thin marker, the threshold line
    (named in the legend, so no label sits over the bars). None when nothing was compared."""
    r = read_result(result)
    cands = r["candidates"]
    if not cands:
        return None
    labels = [c["label"] for c in cands][::-1]
    refined = [c["similarity"] or 0.0 for c in cands][::-1]
    raw = [c["raw_similarity"] for c in cands][::-1]
    colours = ["#9aa0a6"] * len(labels)
    if labels:
        colours[-1] = "#1e8e3e" if r["accepted"] else "#e37400"
    fig = go.Figure()
    fig.add_bar(x=refined, y=labels, orientation="h", marker_color=colours, name="similarity",
                text=[f"{v:.2f}" for v in refined], textposition="auto",
                hovertemplate="%{y}: similarity %{x:.3f}<extra>ranking score (cosine blended with DTW)</extra>")
    if any(v is not None for v in raw):
        fig.add_scatter(x=raw, y=labels, mode="markers", name="raw cosine",
                        marker={"symbol": "line-ns-open", "size": 18, "color": "#202124"},
                        hovertemplate="%{y}: cosine %{x:.3f}<extra>before the DTW blend</extra>")
    threshold = (thresholds or {}).get("SIM_THRESHOLD")
    if threshold is not None:
        fig.add_vline(x=float(threshold), line_dash="dash", line_color="#d93025")
        fig.add_scatter(x=[None], y=[None], mode="lines", name=f"threshold {float(threshold):.2f} (cosine)",
                        line={"dash": "dash", "color": "#d93025"}, hoverinfo="skip")
    fig.update_layout(height=130 + 36 * len(labels), margin={"l": 10, "r": 10, "t": 30, "b": 30},
                      xaxis={"range": [min(0.0, *refined), 1.0], "title": "similarity (1 = same movement)"},
                      showlegend=True, legend={"orientation": "h", "y": -80 / (70 + 36 * len(labels))},  # ~80 px under the bars
                      template="plotly_white")
    return fig


def timings_table(stages: dict[str, float]) -> pd.DataFrame:
    rows = [{"stage": name, "ms": round(float(ms), 1)} for name, ms in stages.items() if _num(ms) is not None]
    if rows:
        rows.append({"stage": "total", "ms": round(sum(r["ms"] for r in rows), 1)})
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def no_sign_reason(code: str) -> bool:
    """The clip was not signing (no hands, no motion, resting) rather than an unknown sign."""
    reason = _reason(code or "")
    return reason is not None and reason.no_sign


def live_caption_markdown(captions: list[str], current: str, latency_ms: float | None,
                          hands: tuple[int, int] | None = None) -> str:
    """The live tab's text: the running captions, what is seen now, hands in the window, latency."""
    said = " ".join(captions[-12:]) if captions else "…"
    latency = f"{latency_ms:.0f} ms" if latency_ms is not None else "–"
    seen = f" · hands in {hands[0]} of the last {hands[1]} frames" if hands else ""
    return (f"<div class='ss-captions' aria-live='polite'>{html.escape(said)}</div>"
            f"<div class='ss-now'>now: <b>{html.escape(current)}</b>{seen} · latency {latency}</div>")
