"""Streamlit pieces every page shares: the sidebar, shareable URL state, loading with progress and
readable errors, the clip viewer (skeletons, image coordinates, source video)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer import data, plots
from signseek.ranker import Reason

# What each rejection reason means, for captions (signseek.ranker.Reason is the one list).
REASON_HELP = {r.value: r.explain for r in Reason if r is not Reason.NONE}

# URL query parameters <-> session state: a link reopens the same bundle, dataset, clips and
# selection (the page is the URL's path: /confusion, /openset, ...).
QUERY_KEYS = {"bundle": "bundle_dir", "data": "data_path", "clips": "clips", "sessions": "sessions",
              "clip": "clip", "compare": "compare_dir", "negatives": "negatives_path", "highlight": "highlight"}
_LISTS = ("sessions", "highlight")


def _seed_from_url() -> None:
    """Once per browser session: the URL's parameters become the sidebar's choices."""
    if st.session_state.get("_url_seeded"):
        return
    st.session_state["_url_seeded"] = True
    params = st.query_params
    for name, key in QUERY_KEYS.items():
        if name not in params:
            continue
        if name in _LISTS:
            st.session_state[key] = [v for v in params[name].split(",") if v]
        elif name == "clip":
            try:
                st.session_state["clip"] = int(params[name])
            except ValueError:
                st.session_state["url_problem"] = f"the link's clip={params[name]!r} is not a clip number"
        else:
            st.session_state[key] = params[name]


def write_url() -> None:
    """Mirror the current choices into the URL (copy the address bar to share this view)."""
    wanted = {}
    for name, key in QUERY_KEYS.items():
        value = st.session_state.get(key)
        if value in (None, "", []):
            continue
        wanted[name] = ",".join(map(str, value)) if name in _LISTS else str(value)
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


def remember_clip(query: int) -> None:
    """The clip a page opened: kept in the URL (clip=) so a shared link opens it again."""
    if st.session_state.get("clip") != int(query):
        st.session_state["clip"] = int(query)
        write_url()


def linked_clip(choices: list[int]) -> int | None:
    """The URL's clip when it is among this page's choices."""
    clip = st.session_state.get("clip")
    return int(clip) if clip is not None and int(clip) in set(int(c) for c in choices) else None


def sidebar() -> None:
    """Bundle, dataset and clip pickers (kept in session state, so every page sees the same choice)."""
    _seed_from_url()
    st.session_state.setdefault("bundle_dir", str(data.default_bundle_dir()))
    st.session_state.setdefault("data_path", str(data.default_data_path()))
    st.session_state.setdefault("clips", data.DEFAULT_CLIPS)
    if st.session_state["clips"] not in data.CLIP_CHOICES:
        st.session_state["clips"] = data.DEFAULT_CLIPS
    with st.sidebar:
        st.text_input("Bundle folder", key="bundle_dir",
                      help="A SignSeek bundle (models/ by default); relative paths are from the project root.")
        st.text_input("Dataset (.npz)", key="data_path",
                      help="The shared NPZ layout (landmarks [N, T, 258 | 126 | 1629], label, session, sequence) "
                           "or a SignSeek dataset file (imported videos, the demo's feedback).")
        st.radio("Clips", list(data.CLIP_CHOICES), format_func=data.CLIP_CHOICES.get, key="clips",
                 help="Held-out sittings: clips whose (label, session) no reference comes from, so a clip cannot "
                      "find itself among the references. Calibrate on these.")
        sessions = _sessions_available()
        if sessions:
            kept = [s for s in st.session_state.get("sessions", []) if s in sessions]
            st.session_state["sessions"] = kept
            st.multiselect("Sessions (signers)", sessions, key="sessions", placeholder="every session",
                           help="Narrow every page to these sessions; the Sessions page compares them.")
        if st.button("Reload (clear caches)", key="reload"):
            st.cache_data.clear()
            st.cache_resource.clear()
    write_url()


def _sessions_available() -> list[str]:
    """The loaded file's sessions, when it is loaded already (the sidebar never loads it itself)."""
    try:
        dataset = data.cached_dataset(st.session_state["data_path"])
    except Exception:  # noqa: BLE001 (the page shows the error; the sidebar just has no session list)
        return []
    return sorted({str(s) for s in np.asarray(dataset.signers).tolist()}, key=lambda s: (len(s), s))


def current_selection() -> data.Selection:
    return data.Selection(st.session_state.get("clips") or data.DEFAULT_CLIPS,
                          tuple(st.session_state.get("sessions") or ()))


def current_clips() -> str:
    return current_selection().clips


def current_paths() -> tuple[str, str]:
    return (st.session_state.get("bundle_dir") or str(data.default_bundle_dir()),
            st.session_state.get("data_path") or str(data.default_data_path()))


def progress_bar(label: str):
    """A progress callback drawing into a bar that disappears when the work is done."""
    slot = st.empty()
    state = {"bar": None}

    def update(fraction: float, text: str) -> None:
        if state["bar"] is None:
            state["bar"] = slot.progress(0.0, text=label)
        state["bar"].progress(min(max(float(fraction), 0.0), 1.0), text=text)

    return slot, update


def evaluation_for(bundle_dir: str, data_path: str) -> data.Evaluation:
    slot, update = progress_bar("Evaluating the dataset with the engine (cached afterwards)...")
    try:
        return data.cached_evaluation(bundle_dir, data_path, update)
    finally:
        slot.empty()


def load(with_warning: bool = True) -> tuple[data.BundleView, data.Evaluation]:
    """The chosen bundle and its evaluation on the chosen dataset, narrowed to the sidebar's clips;
    a clear message and stop on failure."""
    bundle_dir, data_path = current_paths()
    if st.session_state.get("url_problem"):
        st.warning(st.session_state.pop("url_problem"))
    try:
        bundle = data.cached_bundle(bundle_dir)
        data.cached_dataset(data_path)
        evaluation = evaluation_for(bundle_dir, data_path)
        evaluation, warning = data.select_clips(evaluation, bundle, current_selection())
    except data.ExplorerError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(evaluation.note)
    if warning and with_warning:
        st.warning(warning, icon=":material/warning:")
    if evaluation.records.empty:
        st.warning("No clip of this dataset is left with this selection: widen the sessions or the clips in the sidebar.")
        st.stop()
    return bundle, evaluation


def embeddings() -> np.ndarray:
    slot, update = progress_bar("Embedding the clips (cached afterwards)...")
    try:
        return data.cached_embeddings(*current_paths(), update)
    finally:
        slot.empty()


def describe_query(evaluation: data.Evaluation, query: int) -> str:
    row = evaluation.records.loc[query]
    verdict = "accepted" if row["accepted"] else f"rejected: {row['rejection_reason']}"
    return f"#{query} {row['label']} -> {row['pred'] or 'nothing'} ({verdict})"


VIEWS = {"features": "what the encoder sees (body frame)", "image": "landmarks in image coordinates",
         "video": "source video frames"}


def clip_viewer(bundle: data.BundleView, evaluation: data.Evaluation, query: int, key: str) -> None:
    """One clip beside its nearest reference; its landmarks in image coordinates; its source video's
    frames when the importer recorded the video; its ranked references."""
    remember_clip(query)
    row = evaluation.records.loc[query]
    refs = [int(r) for r in row["ranked_refs"] if int(r) >= 0]
    _, data_path = current_paths()
    has_video = bool(row["video"]) and data.resolve(row["video"]).is_file()
    views = ["features", "image"] + (["video"] if has_video else [])
    view = st.radio("Show", views, format_func=VIEWS.get, horizontal=True, key=f"{key}_view",
                    index=views.index("video") if has_video else 0)
    left, right = st.columns([3, 2])
    with left:
        if view == "features":
            clips = [(f"query #{query}: {row['label']}", data.clip_features(*current_paths(), query))]
            if refs:
                ref_row = bundle.references.loc[refs[0]]
                clips.append((f"nearest reference #{refs[0]}: {ref_row['label']} ({row['ranked_sims'][0]:.3f})",
                              bundle.bundle.reference_features[refs[0]]))
            st.plotly_chart(plots.skeleton_animation(clips, bundle.bundle.feature_config), key=f"{key}_skeleton")
        elif view == "image":
            st.plotly_chart(plots.image_skeleton_animation(data.clip_points(data_path, query),
                                                           f"query #{query}: {row['label']}"),
                            key=f"{key}_image")
        else:
            _video_frames(row, data_path, query, key)
    with right:
        st.markdown(f"**{describe_query(evaluation, query)}**")
        if row["video"]:
            st.caption(f"source: `{row['video']}`" + (f", from frame {row['frame_start']}" if row["frame_start"] else "")
                       + ("" if has_video else " (not found on this machine)"))
        if row["demo_answer"]:
            st.caption(f"flagged in the demo: it answered **{row['demo_answer']}**, the user says **{row['label']}**")
        if not len(row["ranked_labels"]):
            reason = row["rejection_reason"]
            st.caption(f"Stopped before the search ({REASON_HELP.get(reason, reason)}); "
                       f"motion {row['motion']:.4f}, {row['hand_frames']} frames with a hand.")
            return
        st.caption(f"score {row['score']:.3f}, margin {row['margin']:.3f}, confidence {row['confidence']:.3f}, "
                   f"motion {row['motion']:.4f}, answered by {row['model']}"
                   + (f", nearest prototype {row['proto_label']}" if row["proto_label"] else ""))
        st.dataframe(nearest_table(bundle, row), hide_index=True, key=f"{key}_nearest")


def _video_frames(row: pd.Series, data_path: str, query: int, key: str) -> None:
    """The clip's frames from its source video, with the landmarks the importer extracted drawn on."""
    from explorer import media

    points = data.clip_points(data_path, query)
    start = int(row["frame_start"] or 0)
    try:
        frames = media.read_frames(data.resolve(row["video"]), start, len(points))
    except media.MediaError as exc:
        st.warning(str(exc))
        return
    if not frames:
        st.warning(f"{row['video']} has no frames from {start} on")
        return
    t = st.slider("Frame", 0, len(frames) - 1, len(frames) // 2, key=f"{key}_frame") if len(frames) > 1 else 0
    st.image(media.overlay(frames[t], points[min(t, len(points) - 1)]),
             caption=f"video frame {start + t} with the extracted landmarks", width="stretch")


def nearest_table(bundle: data.BundleView, row: pd.Series) -> pd.DataFrame:
    """The ranked labels with their scores; each label's best reference where the encoder answered."""
    refs = [int(r) for r in row["ranked_refs"]]
    table = pd.DataFrame({"label": list(row["ranked_labels"]),
                          "similarity": [round(float(s), 4) for s in row["ranked_sims"]]})
    if refs and all(r >= 0 for r in refs):
        info = bundle.references.loc[refs, ["session", "sample_id"]].reset_index(drop=True)
        table.insert(0, "reference", refs)
        table = pd.concat([table, info], axis=1)
    return table


def thresholds_table(bundle: data.BundleView) -> pd.DataFrame:
    return pd.DataFrame({"setting": list(bundle.thresholds),
                         "value": [str(v) for v in bundle.thresholds.values()],
                         "source": [bundle.threshold_sources[n] for n in bundle.thresholds]})


def label_highlight(labels: list[str]) -> list[str]:
    """Label search + highlight (kept in the URL as highlight=)."""
    kept = [label for label in st.session_state.get("highlight", []) if label in labels]
    st.session_state["highlight"] = kept
    return st.multiselect("Highlight labels (type to search)", labels, key="highlight", placeholder="none",
                          help="The chosen labels keep their colours; every other point turns grey.")
