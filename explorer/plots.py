"""Plotly figures for the explorer pages: pure functions of arrays and data frames.

Nothing here touches Streamlit or the bundle, so the figures can be built (and tested) alone.
Large scatters use WebGL (`go.Scattergl`) so 5,000+ points stay responsive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from signseek.features import FeatureConfig
from signseek.landmarks.schema import N_HAND

# MediaPipe's hand skeleton (mediapipe.python.solutions.hands_connections.HAND_CONNECTIONS), copied
# as data so the explorer does not load MediaPipe's native runtime just to draw 21 bones.
HAND_BONES = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10),
    (9, 13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20),
)
# The upper-body part of MediaPipe's POSE_CONNECTIONS (shoulders, arms), plus nose to shoulders.
POSE_BONES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (0, 11), (0, 12))

SKELETON_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")  # query, reference, ...
OUTCOME_COLOURS = {
    "right": "#2ca02c",
    "wrong": "#d62728",
    "rejected (top-1 right)": "#9ecae1",
    "rejected (top-1 wrong)": "#ff9896",
}


# ---------------------------------------------------------------------------- skeletons


def skeleton_from_features(features: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """Body-frame skeleton of a prepared feature sequence [L, F] (before normalisation).

    Drawing what the encoder sees (torso-centred, shoulder-width units) puts a query and a
    reference on the same footing, and works for bundle references, of which only features exist.
    Returns {"pose": [L, P, 2] or absent, "hands": [L, 2, 21, 2], "presence": [L, 2]}.
    """
    features = np.asarray(features, dtype=np.float32)
    blocks = cfg.blocks
    out = {
        "hands": features[:, blocks["hands"]].reshape(len(features), 2, N_HAND, 2),
        "presence": features[:, blocks["presence"]] > 0.5,
    }
    if "pose" in blocks:
        out["pose"] = features[:, blocks["pose"]].reshape(len(features), len(cfg.pose_points), 2)
    return out


def _frame_lines(skeleton: dict, t: int, cfg: FeatureConfig) -> tuple[list, list]:
    """x, y of one frame's bones as None-separated line segments (y flipped: image y points down)."""
    xs: list = []
    ys: list = []

    def bone(a, b) -> None:
        xs.extend([float(a[0]), float(b[0]), None])
        ys.extend([-float(a[1]), -float(b[1]), None])

    if "pose" in skeleton:
        where = {p: i for i, p in enumerate(cfg.pose_points)}
        pose = skeleton["pose"][t]
        for a, b in POSE_BONES:
            if a in where and b in where:
                bone(pose[where[a]], pose[where[b]])
    for hand in range(2):
        if not skeleton["presence"][t, hand]:
            continue
        points = skeleton["hands"][t, hand]
        for a, b in HAND_BONES:
            bone(points[a], points[b])
    return xs, ys


def skeleton_animation(clips: list[tuple[str, np.ndarray]], cfg: FeatureConfig, height: int = 420) -> go.Figure:
    """Side-by-side animated skeletons of prepared feature sequences, one subplot each.

    clips: (title, features [L, F]); plotly animation frames with a play button and a slider.
    """
    skeletons = [skeleton_from_features(f, cfg) for _, f in clips]
    n_frames = max(len(s["hands"]) for s in skeletons)
    fig = make_subplots(rows=1, cols=len(clips), subplot_titles=[title for title, _ in clips])

    def traces(t: int) -> list[go.Scatter]:
        out = []
        for i, s in enumerate(skeletons):
            xs, ys = _frame_lines(s, min(t, len(s["hands"]) - 1), cfg)
            colour = SKELETON_COLOURS[i % len(SKELETON_COLOURS)]
            out.append(go.Scatter(x=xs, y=ys, mode="lines+markers", line={"width": 2, "color": colour},
                                  marker={"size": 3, "color": colour}, showlegend=False, hoverinfo="skip"))
        return out

    for col, trace in enumerate(traces(0), start=1):
        fig.add_trace(trace, row=1, col=col)
    # Fixed axes over the whole clip so the skeleton moves instead of the frame.
    for col, s in enumerate(skeletons, start=1):
        parts = [s["hands"][s["presence"]].reshape(-1, 2)]
        if "pose" in s:
            parts.append(s["pose"].reshape(-1, 2))
        xy = np.concatenate(parts)
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            xy = np.zeros((1, 2))
        lo, hi = xy.min(axis=0) - 0.3, xy.max(axis=0) + 0.3
        fig.update_xaxes(range=[lo[0], hi[0]], showticklabels=False, row=1, col=col)
        fig.update_yaxes(range=[-hi[1], -lo[1]], showticklabels=False, scaleanchor=f"x{col if col > 1 else ''}",
                         row=1, col=col)
    fig.frames = [go.Frame(data=traces(t), name=str(t), traces=list(range(len(clips)))) for t in range(n_frames)]
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        updatemenus=[{
            "type": "buttons", "showactive": False, "x": 0.0, "y": -0.02, "xanchor": "left",
            "buttons": [
                {"label": "Play", "method": "animate",
                 "args": [None, {"frame": {"duration": 80, "redraw": True}, "fromcurrent": True}]},
                {"label": "Pause", "method": "animate",
                 "args": [[None], {"frame": {"duration": 0}, "mode": "immediate"}]},
            ],
        }],
        sliders=[{
            "x": 0.15, "len": 0.85, "y": -0.02, "currentvalue": {"prefix": "frame "},
            "steps": [{"label": str(t), "method": "animate",
                       "args": [[str(t)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                      for t in range(n_frames)],
        }],
    )
    return fig


def _image_lines(points: np.ndarray) -> tuple[list, list]:
    """x, y (image-normalised, y flipped) of one canonical frame's upper body and hands."""
    from signseek.landmarks.schema import LEFT_HAND, POSE, RIGHT_HAND

    xs: list = []
    ys: list = []
    for offset, bones in ((POSE.start, POSE_BONES), (LEFT_HAND.start, HAND_BONES), (RIGHT_HAND.start, HAND_BONES)):
        for a, b in bones:
            p, q = points[offset + a, :2], points[offset + b, :2]
            if np.isfinite(p).all() and np.isfinite(q).all():
                xs.extend([float(p[0]), float(q[0]), None])
                ys.extend([-float(p[1]), -float(q[1]), None])
    return xs, ys


def image_skeleton_animation(points: np.ndarray, title: str, height: int = 460) -> go.Figure:
    """A clip's landmarks where MediaPipe saw them: image coordinates (0-1, y down), every frame.

    points: canonical [T, 543, 3] (NaN = not detected). The axes span the whole image, so where
    the signer stood and how far the hands travelled show as they were filmed.
    """
    points = np.asarray(points, dtype=np.float32)
    first = _image_lines(points[0])
    fig = go.Figure(go.Scatter(x=first[0], y=first[1], mode="lines+markers", line={"width": 2, "color": SKELETON_COLOURS[0]},
                               marker={"size": 3}, showlegend=False, hoverinfo="skip"))
    fig.frames = [go.Frame(data=[go.Scatter(x=xs, y=ys)], name=str(t))
                  for t, (xs, ys) in enumerate(_image_lines(p) for p in points)]
    fig.update_layout(
        title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"range": [0, 1], "title": "x (image width)", "constrain": "domain"},
        yaxis={"range": [-1, 0], "title": "y (image height, down)", "scaleanchor": "x"},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": -0.08, "xanchor": "left",
                      "buttons": [{"label": "Play", "method": "animate",
                                   "args": [None, {"frame": {"duration": 80, "redraw": True}, "fromcurrent": True}]}]}],
        sliders=[{"x": 0.15, "len": 0.85, "y": -0.08, "currentvalue": {"prefix": "frame "},
                  "steps": [{"label": str(t), "method": "animate",
                             "args": [[str(t)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                            for t in range(len(points))]}],
    )
    return fig


# ---------------------------------------------------------------------------- embeddings


def label_colours(labels) -> dict[str, str]:
    """A distinct colour for every label (up to 74 from plotly's Alphabet, Dark24 and Light24;
    beyond that, evenly spaced hues), stable for a given sorted label list."""
    from plotly.colors import qualitative

    palette = [*qualitative.Alphabet, *qualitative.Dark24, *qualitative.Light24]
    palette = list(dict.fromkeys(c.upper() for c in palette))
    names = sorted({str(x) for x in labels})
    if len(names) > len(palette):
        import colorsys

        hues = [colorsys.hsv_to_rgb(i / len(names), 0.75, 0.85) for i in range(len(names))]
        palette = ["#" + "".join(f"{int(255 * v):02x}" for v in rgb) for rgb in hues]
    return {name: palette[i] for i, name in enumerate(names)}


HIDDEN_COLOUR = "#d0d0d0"


def embedding_scatter(points: pd.DataFrame, colour_by: str, highlight=()) -> go.Figure:
    """WebGL scatter of a 2-D projection; points has x, y, query, label, session, outcome, pred.

    One trace per colour group, each with its own colour (every label distinct); with
    ``highlight`` only those labels keep their colour and the rest are grey, drawn underneath.
    Each point carries its query index in customdata, so a selection names the clip.
    """
    fig = go.Figure()
    groups = points[colour_by].astype(str)
    palette = OUTCOME_COLOURS if colour_by == "outcome" else label_colours(groups.unique())
    highlight = {str(h) for h in highlight}
    if highlight:
        rest = points[~points["label"].astype(str).isin(highlight)]
        if len(rest):
            fig.add_trace(go.Scattergl(
                x=rest["x"], y=rest["y"], mode="markers", name="(others)",
                marker={"size": 5, "opacity": 0.35, "color": HIDDEN_COLOUR},
                customdata=np.stack([rest["query"], rest["label"], rest["pred"]], axis=1),
                hovertemplate="clip %{customdata[0]}<br>true %{customdata[1]}<br>pred %{customdata[2]}<extra></extra>",
            ))
        points = points[points["label"].astype(str).isin(highlight)]
        groups = points[colour_by].astype(str)
    for name in sorted(groups.unique(), key=str):
        part = points[groups == name]
        fig.add_trace(go.Scattergl(
            x=part["x"], y=part["y"], mode="markers", name=name,
            marker={"size": 8 if highlight else 6, "opacity": 0.85, "color": palette.get(name)},
            customdata=np.stack([part["query"], part["label"], part["pred"]], axis=1),
            hovertemplate="clip %{customdata[0]}<br>true %{customdata[1]}<br>pred %{customdata[2]}<extra></extra>",
        ))
    fig.update_layout(height=600, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title_text=colour_by)
    return fig


# ---------------------------------------------------------------------------- matrices


def similarity_heatmap(matrix: np.ndarray, labels: list[str], title: str = "") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Viridis", zmin=-1, zmax=1,
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=max(400, 18 * len(labels) + 120),
                      yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def confusion_heatmap(values: np.ndarray, counts: np.ndarray, true_labels: list[str], pred_labels: list[str],
                      zmax: float, what: str = "clips") -> go.Figure:
    """A confusion matrix (rows true, columns predicted) coloured by ``values`` (counts, shares or
    their log; NaN = hidden) on a scale topped at ``zmax``, with a clickable marker on every cell.

    Plotly heatmaps cannot be selected; an almost invisible scatter point on each non-empty cell
    carries (true, predicted) in customdata so a click selects the cell.
    """
    fig = go.Figure(go.Heatmap(z=values, x=pred_labels, y=true_labels, colorscale="Blues", zmin=0, zmax=zmax,
                               customdata=counts, colorbar={"title": {"text": what}},
                               hovertemplate="true %{y}, predicted %{x}: %{customdata} clips<extra></extra>"))
    rows, cols = np.nonzero(counts)
    fig.add_trace(go.Scatter(
        x=[pred_labels[c] for c in cols], y=[true_labels[r] for r in rows], mode="markers+text",
        text=[str(int(counts[r, c])) for r, c in zip(rows, cols, strict=True)], textfont={"size": 9},
        marker={"size": 14, "opacity": 0.01, "color": "black"}, showlegend=False,
        customdata=[[true_labels[r], pred_labels[c]] for r, c in zip(rows, cols, strict=True)],
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{text}<extra></extra>",
    ))
    size = max(450, 20 * len(true_labels) + 150)
    fig.update_layout(height=size, xaxis_title="predicted", yaxis_title="true",
                      yaxis={"autorange": "reversed", "type": "category"}, xaxis={"type": "category"},
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


# ---------------------------------------------------------------------------- distributions


def spread_box(spread: pd.DataFrame) -> go.Figure:
    """Per-label box plot of members' similarity to their prototype (spread has label, similarity)."""
    order = spread.groupby("label")["similarity"].median().sort_values().index.tolist()
    fig = go.Figure()
    for label in order:
        fig.add_trace(go.Box(y=spread.loc[spread["label"] == label, "similarity"], name=str(label),
                             boxpoints="outliers", showlegend=False))
    fig.update_layout(height=420, yaxis_title="cosine to prototype", margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def outcome_histogram(records: pd.DataFrame, column: str, threshold: float | None = None,
                      title: str | None = None) -> go.Figure:
    """Overlaid histograms of ``column`` for top-1-right and top-1-wrong queries."""
    fig = go.Figure()
    for name, mask, colour in (("right", records["top1_correct"], OUTCOME_COLOURS["right"]),
                               ("wrong", ~records["top1_correct"], OUTCOME_COLOURS["wrong"])):
        fig.add_trace(go.Histogram(x=records.loc[mask, column], name=f"top-1 {name}", opacity=0.6,
                                   marker_color=colour, nbinsx=40))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"{threshold:.3f}")
    fig.update_layout(barmode="overlay", height=320, xaxis_title=title or column, yaxis_title="clips",
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def acceptance_curve(curve: pd.DataFrame, chosen: tuple[float, float] | None = None) -> go.Figure:
    """Precision of accepted answers against acceptance rate (curve has acceptance, precision)."""
    fig = go.Figure(go.Scatter(x=curve["acceptance"], y=curve["precision"], mode="lines",
                               name="threshold sweep", customdata=curve[["threshold"]],
                               hovertemplate="accept %{x:.2%}<br>precision %{y:.2%}"
                                             "<br>threshold %{customdata[0]:.3f}<extra></extra>"))
    if chosen is not None:
        fig.add_trace(go.Scatter(x=[chosen[0]], y=[chosen[1]], mode="markers", name="chosen",
                                 marker={"size": 12, "color": "#d62728"}))
    precision = curve["precision"].dropna()
    low = float(min(precision.min(), chosen[1] if chosen else 1.0)) if len(precision) else 0.0
    fig.update_layout(height=360, xaxis_title="acceptance rate", yaxis_title="precision of accepted",
                      xaxis={"range": [0, 1.02], "tickformat": ".0%"},
                      yaxis={"tickformat": ".1%", "range": [max(0.0, low - 0.02), 1.005]},
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


# ---------------------------------------------------------------------------- open set and comparisons


def known_unknown_histogram(known: np.ndarray, unknown: np.ndarray, threshold: float | None,
                            xaxis: str = "score") -> go.Figure:
    """Overlaid histograms of the decision score for clips of known and of unknown signs."""
    fig = go.Figure()
    for name, values, colour in (("known signs", known, "#2ca02c"), ("unknown signs", unknown, "#d62728")):
        fig.add_trace(go.Histogram(x=values, name=f"{name} ({len(values)})", opacity=0.6, marker_color=colour,
                                   nbinsx=40, histnorm="probability"))
    if threshold is not None and np.isfinite(threshold):
        fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"served {threshold:.3f}")
    fig.update_layout(barmode="overlay", height=340, xaxis_title=xaxis, yaxis_title="share of clips",
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def rejection_curve(curve: pd.DataFrame, served: tuple[float, float] | None = None) -> go.Figure:
    """Unknown clips accepted (false accepts) against known clips accepted as the threshold sweeps."""
    fig = go.Figure(go.Scatter(x=curve["unknown_accepted"], y=curve["known_accepted"], mode="lines",
                               name="threshold sweep", customdata=curve[["threshold"]],
                               hovertemplate="unknown accepted %{x:.1%}<br>known accepted %{y:.1%}"
                                             "<br>threshold %{customdata[0]:.3f}<extra></extra>"))
    if served is not None:
        fig.add_trace(go.Scatter(x=[served[0]], y=[served[1]], mode="markers", name="served operating point",
                                 marker={"size": 12, "color": "#d62728"}))
    fig.update_layout(height=360, xaxis_title="unknown clips accepted (false accepts)",
                      yaxis_title="known clips accepted", xaxis={"range": [-0.02, 1.02], "tickformat": ".0%"},
                      yaxis={"range": [-0.02, 1.02], "tickformat": ".0%"}, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def per_sign_delta(table: pd.DataFrame, column: str = "delta") -> go.Figure:
    """Horizontal bars of each sign's change (B - A), worst first."""
    table = table.sort_values(column)
    colours = np.where(table[column] < 0, "#d62728", "#2ca02c")
    fig = go.Figure(go.Bar(x=table[column], y=table["label"].astype(str), orientation="h", marker_color=colours,
                           hovertemplate="%{y}: %{x:+.3f}<extra></extra>"))
    fig.update_layout(height=max(320, 16 * len(table) + 80), xaxis_title="change in right answers (B - A)",
                      yaxis={"type": "category"}, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig
