"""Streamlit pieces every page shares: the sidebar, loading with readable errors, the clip viewer."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import data, plots

# The evaluator's summary numbers the overview shows, by the trainer's metric names.
HEADLINE_METRICS = {
    "top1": "Top-1",
    "top5": "Top-5",
    "mrr": "MRR",
    "encoder_top1": "Top-1, cosine only",
    "proto_top1": "Top-1, prototypes",
}

# What each rejection reason means (signseek.engine.gates), for captions.
REASON_HELP = {
    "no_hands": "no hand in any frame",
    "low_motion": "motion below MOTION_FLOOR",
    "idle": "best match is the idle sign",
    "unknown_sign": "top-1 similarity below SIM_THRESHOLD",
    "ambiguous_margin": "top-1 minus top-2 below SIM_MARGIN",
    "prototype_disagreement": "nearest prototype is another sign",
}


def sidebar() -> None:
    """Bundle and dataset pickers (kept in session state, so every page sees the same choice)."""
    with st.sidebar:
        st.text_input("Bundle folder", value=str(data.default_bundle_dir()), key="bundle_dir",
                      help="A SignSeek bundle (models/ by default); relative paths are from the project root.")
        st.text_input("Dataset (.npz)", value=str(data.default_data_path()), key="data_path",
                      help="Shared NPZ layout: landmarks [N, T, 258|126|1629], label, session, sequence.")
        st.radio("Clips", list(data.CLIP_CHOICES), format_func=data.CLIP_CHOICES.get, key="clips",
                 help="Clips from sittings (label, session) that no reference comes from: scores that a clip "
                      "finding itself among the references cannot inflate. Calibrate on these.")
        if st.button("Reload (clear caches)", key="reload"):
            st.cache_data.clear()
            st.cache_resource.clear()


def current_clips() -> str:
    return st.session_state.get("clips") or "all"


def current_paths() -> tuple[str, str]:
    return (st.session_state.get("bundle_dir") or str(data.default_bundle_dir()),
            st.session_state.get("data_path") or str(data.default_data_path()))


def load() -> tuple[data.BundleView, data.Evaluation]:
    """The chosen bundle and its evaluation on the chosen dataset; a clear message and stop on failure."""
    bundle_dir, data_path = current_paths()
    try:
        bundle = data.cached_bundle(bundle_dir)
        with st.spinner("Evaluating the dataset with the engine (cached afterwards)..."):
            evaluation = data.cached_evaluation(bundle_dir, data_path)
        evaluation = data.select_clips(evaluation, bundle, current_clips())
    except data.ExplorerError as exc:
        st.error(str(exc))
        st.stop()
    if evaluation.records.empty:
        st.warning("No clip of this dataset is left with this selection: choose 'all clips' in the sidebar.")
        st.stop()
    return bundle, evaluation


def trainer_report() -> data.TrainerReport:
    return data.cached_trainer_report(*current_paths())


def describe_query(evaluation: data.Evaluation, query: int) -> str:
    row = evaluation.records.loc[query]
    verdict = "accepted" if row["accepted"] else f"rejected: {row['rejection_reason']}"
    return f"#{query} {row['label']} -> {row['pred'] or 'nothing'} ({verdict})"


def clip_viewer(bundle: data.BundleView, evaluation: data.Evaluation, query: int, key: str) -> None:
    """One query clip beside its nearest reference (animated skeletons), and its ranked references."""
    row = evaluation.records.loc[query]
    ref = int(row["ranked_refs"][0]) if len(row["ranked_refs"]) else None
    clips = [(f"query #{query}: {row['label']}", data.clip_features(*current_paths(), query))]
    if ref is not None:
        ref_row = bundle.references.loc[ref]
        clips.append((f"nearest reference #{ref}: {ref_row['label']} ({row['ranked_sims'][0]:.3f})",
                      bundle.bundle.reference_features[ref]))
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(plots.skeleton_animation(clips, bundle.bundle.feature_config), key=f"{key}_skeleton")
    with right:
        st.markdown(f"**{describe_query(evaluation, query)}**")
        if ref is None:
            st.caption(f"Stopped before the search ({REASON_HELP.get(row['rejection_reason'], '')}); "
                       f"motion {row['motion']:.4f}, {row['hand_frames']} frames with a hand.")
            return
        st.caption(f"top-1 similarity {row['top1_sim']:.3f}, margin {row['margin']:.3f}, "
                   f"motion {row['motion']:.4f}, nearest prototype {row['proto_label']}")
        st.dataframe(nearest_table(bundle, row), hide_index=True, key=f"{key}_nearest")


def nearest_table(bundle: data.BundleView, row: pd.Series) -> pd.DataFrame:
    refs = [int(r) for r in row["ranked_refs"]]
    table = bundle.references.loc[refs, ["label", "session", "sample_id"]].reset_index(names="reference")
    table.insert(2, "similarity", [round(float(s), 4) for s in row["ranked_sims"]])
    return table


def thresholds_table(bundle: data.BundleView) -> pd.DataFrame:
    return pd.DataFrame({"setting": list(bundle.thresholds),
                         "value": [str(v) for v in bundle.thresholds.values()],
                         "source": [bundle.threshold_sources[n] for n in bundle.thresholds]})
