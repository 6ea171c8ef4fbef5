"""Loading, caching and the analyst's views of an evaluation (plain Python, usable without Streamlit).

    view = load_bundle_view("models")                  # verified bundle + reference table + settings
    dataset = load_dataset("sample_dataset/signs_sample.npz")   # shared NPZ or a SignDataset file
    ev = evaluate("models", "sample_dataset/signs_sample.npz")
    ev.records        # one row per clip: label, pred, answer, accepted, rejection_reason, score,
                      # margin, ranked labels / refs / sims, session, model, outcome, ...
    embeddings("models", "sample_dataset/signs_sample.npz")    # [N, D] the engine's embeddings

Every number comes from the engine (`explorer/backend.py` is the one place that calls it). The
`cached_*` functions keep results per bundle and file version for the Streamlit pages; a long
computation reports its progress through a callback so the page can show a bar.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from signseek.bundle import CONFIG, MANIFEST, BundleError, load_bundle, write_manifest, zip_bundle
from signseek.paths import MODELS_DIR, PROJECT_ROOT, SAMPLE_DATASET

DEFAULT_DATA = SAMPLE_DATASET / "signs_sample.npz"
# Rejections made before any search (signseek.ranker.Reason.is_input_gate): thresholds cannot change them.
INPUT_REASONS = ("no_hands", "low_motion")
REJECTED_COLUMN = "(rejected)"

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, text: str) -> None:
    return None


class ExplorerError(RuntimeError):
    """A bundle or dataset the explorer cannot use; the message says what to fix."""


def resolve(path: str | Path) -> Path:
    """A path as given, or relative to the project root (the app may run from anywhere)."""
    path = Path(str(path).strip()).expanduser()
    return path if path.is_absolute() or path.exists() else PROJECT_ROOT / path


def default_bundle_dir() -> Path:
    return Path(os.environ.get("SIGNSEEK_EXPLORER_BUNDLE") or os.environ.get("MODELS_DIR") or MODELS_DIR)


def default_data_path() -> Path:
    return Path(os.environ.get("SIGNSEEK_EXPLORER_DATA") or DEFAULT_DATA)


def file_version(path: Path) -> str:
    """Changes when the file (or a bundle's manifest) changes: the cache key part of a path."""
    target = path / MANIFEST if path.is_dir() else path
    try:
        stat = target.stat()
    except OSError:
        return "missing"
    return f"{stat.st_mtime_ns}-{stat.st_size}"


# ---------------------------------------------------------------------------- bundle


@dataclass
class BundleView:
    """A verified bundle plus the tables the pages show about it."""

    bundle: object  # signseek.bundle.Bundle
    references: pd.DataFrame  # embeddings_map rows, indexed by reference index
    thresholds: dict  # the settings the engine uses with this bundle (name -> value)
    threshold_sources: dict  # name -> "default" | "bundle" | "env" | ".env"

    @property
    def directory(self) -> Path:
        return self.bundle.directory

    @property
    def labels(self) -> list[str]:
        """The labels the references cover (idle ones included), sorted."""
        return sorted(set(self.references["label"].astype(str)))

    @property
    def classifier_labels(self) -> dict[str, list[str]]:
        return {name: list(c.labels) for name, c in self.bundle.classifiers.items()}


def load_bundle_view(bundle_dir: str | Path) -> BundleView:
    from explorer import backend

    directory = resolve(bundle_dir)
    if not directory.is_dir():
        raise ExplorerError(f"bundle folder {directory} does not exist: train and export one "
                            "(python -m trainer export) or pick another folder in the sidebar")
    try:
        bundle = load_bundle(directory)
    except BundleError as exc:
        raise ExplorerError(f"cannot load the bundle in {directory}: {exc}") from exc
    references = pd.DataFrame(bundle.rows)
    references["index"] = references["index"].astype(int)
    references = references.set_index("index", drop=False)
    references.index.name = None
    thresholds, sources = backend.settings_in_use(bundle)
    return BundleView(bundle, references, thresholds, sources)


# ---------------------------------------------------------------------------- datasets

# What a dataset file holds, in words (the Overview says it).
LAYOUT_NAMES = {
    "pose_hands": "pose + hands (shared NPZ, 258 values a frame)",
    "hands": "hands only (shared NPZ, 126 values a frame)",
    "canonical": "SignSeek dataset (canonical points)",
}


def load_dataset(data_path: str | Path):
    """A dataset file as a `signseek.datasets.SignDataset`: a file written by `SignDataset.save`
    (canonical points: imported videos, the demo's feedback) or the shared NPZ layout
    (`landmarks` [N, T, 258 | 126 | 1629 ...], `label`, optional `session`, `sequence`)."""
    from signseek.datasets import SignDataset, is_dataset_file
    from signseek.datasets.errors import DatasetError
    from signseek.datasets.npz import import_npz

    path = resolve(data_path)
    if path.is_dir():
        raise ExplorerError(f"{path} is a folder, not a dataset file: give a .npz file (the shared layout, or "
                            "a SignSeek dataset); import a folder of videos first with "
                            f"`python -m signseek.datasets import {path} --format videos --out clips.npz`")
    if not path.is_file():
        raise ExplorerError(f"dataset {path} does not exist: pick a .npz in the shared layout in the sidebar")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        raise ExplorerError(f"{path} is not a .npz file (numpy's zip of arrays): give a dataset in the shared "
                            "NPZ layout (landmarks [N, T, values], label [N]) or one written by SignDataset.save")
    try:
        if is_dataset_file(path):
            dataset, layout = SignDataset.load(path), "canonical"
        else:
            dataset = import_npz(path)
            from signseek.datasets.npz import layout_landmark_index

            layout = next((name for name in ("pose_hands", "hands")
                           if np.array_equal(dataset.landmark_index, layout_landmark_index(name))), "canonical")
    except DatasetError as exc:
        raise ExplorerError(f"cannot read the dataset {path}: {exc}") from exc
    except (ValueError, OSError) as exc:  # numpy's own messages (e.g. "allow_pickle") say nothing useful here
        raise ExplorerError(f"cannot read the dataset {path}: it is not in the shared NPZ layout "
                            f"(landmarks [N, T, values], label [N]) nor a SignSeek dataset ({type(exc).__name__})") from exc
    if len(dataset) == 0:
        raise ExplorerError(f"{path} holds no clips")
    dataset.explorer_layout = layout
    return dataset


def dataset_layout(dataset) -> str:
    """"canonical", "pose_hands" or "hands": how the file stores its clips (load_dataset notes it)."""
    return getattr(dataset, "explorer_layout", "canonical")


def dataset_columns(dataset) -> dict[str, np.ndarray]:
    """Per-clip metadata the pages show and filter on (strings; "" where the file does not say)."""
    n = len(dataset)
    extra = dataset.extra

    def column(*names: str) -> np.ndarray:
        for name in names:
            if name in extra:
                return np.asarray(extra[name]).astype(str)
        return np.full(n, "", dtype=object).astype(str)

    return {
        "sample_id": np.asarray(dataset.ids).astype(str),
        "source": np.asarray(dataset.sources).astype(str),
        "video": column("path", "video_file", "video"),
        "frame_start": column("frame_start"),
        # The demo's feedback file (signseek.feedback): the label is the user's correction and
        # "predicted" what the demo answered.
        "demo_answer": column("predicted"),
    }


# ---------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """The engine's verdict on the clips of a dataset (see the module docstring).

    ``records`` may hold a subset of the file's clips (`restrict`); its index is the clip's
    position in the file ("query"), which also indexes `embeddings`.
    """

    records: pd.DataFrame  # one row per clip, indexed by its position in the file ("query")
    labels: list[str] = field(default_factory=list)  # the bundle's labels, then the data's other labels
    layout: str = "canonical"
    note: str = ""  # what the current selection is (shown under every page's title)

    def restrict(self, mask, note: str | None = None) -> Evaluation:
        return Evaluation(self.records[np.asarray(mask, dtype=bool)], self.labels, self.layout,
                          self.note if note is None else note)


# Which clips the pages show. Held-out sittings by default: a clip from a sitting the references
# come from may be (nearly) a reference itself, and scores itself at 1.000.
CLIP_CHOICES = {"unseen": "held-out sittings (no reference from the same label and session)",
                "all": "all clips (includes the references' own sittings)"}
DEFAULT_CLIPS = "unseen"
INCLUDES_REFERENCES = ("Includes references: these clips share sittings (label, session) with the bundle's "
                       "references, and a clip can find itself among them, so the scores are inflated. "
                       "Choose held-out sittings in the sidebar, or load a held-out file.")


def unseen_sittings(records: pd.DataFrame, references: pd.DataFrame) -> np.ndarray:
    """True for clips whose (label, session) pair no reference shares: recordings the bundle's
    references do not include, so the scores are not inflated by a clip finding itself."""
    seen = set(zip(references["label"].astype(str), references["session"].astype(str), strict=True))
    pairs = zip(records["label"].astype(str), records["session"].astype(str), strict=True)
    return np.array([pair not in seen for pair in pairs], dtype=bool)


@dataclass
class Selection:
    """What the sidebar narrows every page to."""

    clips: str = DEFAULT_CLIPS
    sessions: tuple[str, ...] = ()  # empty: every session

    def key(self) -> str:
        return f"{self.clips}|{','.join(self.sessions)}"


def select_clips(evaluation: Evaluation, bundle: BundleView, selection: Selection | str) -> tuple[Evaluation, str]:
    """The clips a page shows, and a warning when they include the references' sittings ("" if not)."""
    if isinstance(selection, str):
        selection = Selection(selection)
    if selection.clips not in CLIP_CHOICES:
        raise ExplorerError(f"unknown clip selection {selection.clips!r}; choose one of {sorted(CLIP_CHOICES)}")
    records = evaluation.records
    warning = ""
    mask = np.ones(len(records), dtype=bool)
    if selection.clips == "unseen":
        unseen = unseen_sittings(records, bundle.references)
        if unseen.any():
            mask &= unseen
        else:
            warning = ("No clip of this file is from a held-out sitting: showing all of them. " + INCLUDES_REFERENCES)
    elif not unseen_sittings(records, bundle.references).all():
        warning = INCLUDES_REFERENCES
    if selection.sessions:
        mask &= records["session"].astype(str).isin(list(selection.sessions)).to_numpy()
    what = CLIP_CHOICES["all" if warning and selection.clips == "unseen" else selection.clips]
    if selection.sessions:
        what += f", sessions {', '.join(selection.sessions)}"
    return evaluation.restrict(mask, f"{int(mask.sum())} of {len(records)} clips: {what}"), warning


def outcome(accepted: bool, top1_correct: bool, correct: bool) -> str:
    """right (incl. an idle clip rejected), wrong (a wrong sign accepted), or rejected (by top-1)."""
    if correct:
        return "right"
    if accepted:
        return "wrong"
    return "rejected (top-1 right)" if top1_correct else "rejected (top-1 wrong)"


def evaluate(bundle_dir: str | Path, data_path: str | Path, engine=None, dataset=None,
             progress: Progress = _no_progress) -> Evaluation:
    """Run the engine over every clip of ``data_path`` against the bundle's references.

    ``engine`` / ``dataset``: the loaded `Engine` for this bundle and the file's `SignDataset`,
    when the caller has them (else they are loaded).
    """
    from explorer import backend

    view = load_bundle_view(bundle_dir)
    dataset = dataset if dataset is not None else load_dataset(data_path)
    engine = engine or backend.load_engine(view)
    return backend.evaluate(view, dataset, engine, progress)


def embeddings(bundle_dir: str | Path, data_path: str | Path, engine=None, dataset=None,
               progress: Progress = _no_progress) -> np.ndarray:
    """[N, D] the engine's embedding of every clip of the file (the encoder's, as served)."""
    from explorer import backend

    view = load_bundle_view(bundle_dir)
    dataset = dataset if dataset is not None else load_dataset(data_path)
    engine = engine or backend.load_engine(view)
    return backend.embed_dataset(dataset, engine, progress)


# ---------------------------------------------------------------------------- caches

# Results are memoised here rather than with st.cache_data: that copies (pickles) the records on
# every read and cannot show a progress bar from inside the computation.
_MEMO_SIZE = 6
_memo_lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def _memo() -> OrderedDict:
    return OrderedDict()


def memoised(key: tuple, compute: Callable[[], object]):
    """compute() once per key (kept for the app's lifetime, the 6 newest), for the pages' heavier views."""
    return _memoised(key, compute)


def _memoised(key: tuple, compute: Callable[[], object]):
    memo = _memo()
    with _memo_lock:
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
    value = compute()
    with _memo_lock:
        memo[key] = value
        while len(memo) > _MEMO_SIZE:
            memo.popitem(last=False)
    return value


@st.cache_resource(show_spinner="Loading the bundle...", max_entries=4)
def _cached_bundle(bundle_dir: str, version: str) -> BundleView:
    return load_bundle_view(bundle_dir)


def cached_bundle(bundle_dir: str) -> BundleView:
    return _cached_bundle(str(bundle_dir), file_version(resolve(bundle_dir)))


@st.cache_resource(show_spinner="Loading the engine...", max_entries=3)
def _cached_engine(bundle_dir: str, version: str):
    from explorer import backend

    return backend.load_engine(cached_bundle(bundle_dir))


def cached_engine(bundle_dir: str):
    return _cached_engine(str(bundle_dir), file_version(resolve(bundle_dir)))


@st.cache_resource(show_spinner="Reading the dataset...", max_entries=3)
def _cached_dataset(data_path: str, version: str):
    return load_dataset(data_path)


def cached_dataset(data_path: str):
    return _cached_dataset(str(data_path), file_version(resolve(data_path)))


def clip_features(bundle_dir: str, data_path: str, query: int) -> np.ndarray:
    """Prepared features [L, F] of one clip of the file, as the engine prepares it (for the viewer)."""
    from signseek.features import prepare_sequence

    return prepare_sequence(cached_dataset(data_path).points(int(query)), cached_bundle(bundle_dir).bundle.feature_config)


def clip_points(data_path: str, query: int) -> np.ndarray:
    """One clip's canonical points [T, 543, 3] in image coordinates (NaN = not detected)."""
    return cached_dataset(data_path).points(int(query))


def cached_evaluation(bundle_dir: str, data_path: str, progress: Progress = _no_progress) -> Evaluation:
    from explorer import backend

    bundle_dir, data_path = str(bundle_dir), str(data_path)
    key = ("evaluation", bundle_dir, data_path, file_version(resolve(bundle_dir)), file_version(resolve(data_path)))
    return _memoised(key, lambda: backend.evaluate(cached_bundle(bundle_dir), cached_dataset(data_path),
                                                   cached_engine(bundle_dir), progress))


def cached_embeddings(bundle_dir: str, data_path: str, progress: Progress = _no_progress) -> np.ndarray:
    from explorer import backend

    bundle_dir, data_path = str(bundle_dir), str(data_path)
    key = ("embeddings", bundle_dir, data_path, file_version(resolve(bundle_dir)), file_version(resolve(data_path)))
    return _memoised(key, lambda: backend.embed_dataset(cached_dataset(data_path), cached_engine(bundle_dir),
                                                        progress))


def cached_projection(bundle_dir: str, data_path: str, queries: np.ndarray, method: str, seed: int,
                      progress: Progress = _no_progress) -> np.ndarray:
    """[len(queries), 2] projection of these clips' embeddings."""
    queries = np.asarray(queries, dtype=np.int64)
    key = ("projection", str(bundle_dir), str(data_path), file_version(resolve(bundle_dir)),
           file_version(resolve(data_path)), method, int(seed), hash(queries.tobytes()))
    vectors = cached_embeddings(bundle_dir, data_path, progress)[queries]
    return _memoised(key, lambda: project(vectors, method, seed, progress))


# ---------------------------------------------------------------------------- views of an evaluation


def sample_queries(n_total: int, sample: int, seed: int) -> np.ndarray:
    """A seeded, sorted subset of query indices (all of them when sample >= n_total)."""
    if sample >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=sample, replace=False))


# UMAP's first call compiles numba code (a minute on a busy core); it then runs in seconds.
UMAP_EPOCHS = 200


def project(embeddings: np.ndarray, method: str, seed: int = 0, progress: Progress = _no_progress) -> np.ndarray:
    """[N, D] -> [N, 2] by PCA (numpy's SVD), UMAP (umap-learn) or t-SNE (scikit-learn)."""
    n = len(embeddings)
    if n < 3:
        return np.pad(embeddings[:, :2], ((0, 0), (0, max(0, 2 - embeddings.shape[1]))))
    if method == "PCA":  # numpy's SVD: the same axes as scikit-learn's PCA, without importing it
        centred = np.asarray(embeddings, np.float64) - np.mean(embeddings, axis=0)
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        signs = np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())  # sklearn's sign convention
        return (u[:, :2] * s[:2]) * np.where(signs == 0, 1, signs)
    if method == "UMAP":
        progress(0.05, "UMAP: loading umap-learn (its first use compiles numba code: up to a minute)...")
        import umap

        progress(0.3, f"UMAP: {n} points, {UMAP_EPOCHS} epochs...")
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), metric="cosine", random_state=seed,
                            n_jobs=1, n_epochs=UMAP_EPOCHS, low_memory=True)
        out = reducer.fit_transform(embeddings)
        progress(1.0, "UMAP done")
        return out
    if method == "t-SNE":
        from sklearn.manifold import TSNE

        progress(0.2, f"t-SNE: {n} points...")
        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), metric="cosine", init="pca",
                    random_state=seed).fit_transform(embeddings)
    raise ExplorerError(f"unknown projection {method!r}; choose PCA, UMAP or t-SNE")


def projection_frame(records: pd.DataFrame, chosen: np.ndarray, xy: np.ndarray) -> pd.DataFrame:
    rows = records.loc[chosen]
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1], "query": chosen, "label": rows["label"].to_numpy(),
        "session": rows["session"].astype(str).to_numpy(), "outcome": rows["outcome"].to_numpy(),
        "pred": rows["pred"].to_numpy(),
    })


def confusion(records: pd.DataFrame, labels: list[str], served: bool) -> tuple[np.ndarray, list, list]:
    """Counts [true, predicted] (scikit-learn).

    served=True: the engine's answers, every rejection in a last "(rejected)" column.
    served=False: the top-1 of the ranking without gates.
    Rows: the labels of the clips shown; columns: every label answered, plus (rejected).
    """
    from sklearn.metrics import confusion_matrix

    pred = prediction(records, served)
    present = set(records["label"].astype(str))
    rows = [label for label in labels if label in present]
    answered = set(pred.tolist()) | present
    columns = [label for label in labels if label in answered]
    columns += sorted(str(p) for p in answered - set(columns) - {REJECTED_COLUMN, ""})
    if served:
        columns.append(REJECTED_COLUMN)
    matrix = confusion_matrix(records["label"].to_numpy().astype(str), pred.astype(str), labels=columns)
    index = [columns.index(r) for r in rows]
    return matrix[index], rows, columns


def prediction(records: pd.DataFrame, served: bool) -> np.ndarray:
    if served:
        return np.where(records["accepted"], records["answer"], REJECTED_COLUMN).astype(object)
    return records["ranked_top1"].to_numpy().astype(object)


def cell_queries(records: pd.DataFrame, true: str, pred: str, served: bool) -> pd.DataFrame:
    return records[(records["label"] == true).to_numpy() & (prediction(records, served) == pred)]


def expected_cells(rows: list[str], columns: list[str], idle: set[str]) -> np.ndarray:
    """[rows, columns] True where a clip is answered right: its own label, or an idle clip rejected
    (which is not a confusion, and in served mode usually the biggest count of all)."""
    out = np.zeros((len(rows), len(columns)), dtype=bool)
    for r, label in enumerate(rows):
        for c, column in enumerate(columns):
            out[r, c] = column == label or (label in idle and column in (REJECTED_COLUMN, *idle))
    return out


def confusion_errors(matrix: np.ndarray, rows: list[str], columns: list[str],
                     idle: set[str] = frozenset()) -> list[tuple[str, str]]:
    """Cells that are mistakes (not expected_cells), largest first: (true, predicted)."""
    right = expected_cells(rows, columns, set(idle))
    cells = [(int(matrix[r, c]), rows[r], columns[c]) for r in range(len(rows)) for c in range(len(columns))
             if matrix[r, c] and not right[r, c]]
    return [(t, p) for _, t, p in sorted(cells, key=lambda x: -x[0])]


def top_confusions(matrix: np.ndarray, rows: list[str], columns: list[str], idle: set[str] = frozenset(),
                   n: int = 20) -> pd.DataFrame:
    """The biggest mistakes: true, predicted, clips, share of the true label's clips."""
    right = expected_cells(rows, columns, set(idle))
    totals = matrix.sum(axis=1)
    out = [{"true": rows[r], "predicted": columns[c], "clips": int(matrix[r, c]),
            "share of true": float(matrix[r, c] / totals[r]) if totals[r] else 0.0}
           for r in range(len(rows)) for c in range(len(columns)) if matrix[r, c] and not right[r, c]]
    table = pd.DataFrame(out, columns=["true", "predicted", "clips", "share of true"])
    return table.sort_values(["clips", "share of true"], ascending=False).head(n).reset_index(drop=True)


def confusion_display(matrix: np.ndarray, rows: list[str], columns: list[str], idle: set[str], normalise: bool,
                      log: bool, hide_diagonal: bool) -> tuple[np.ndarray, float]:
    """The values the heatmap colours, and the top of its colour scale.

    normalise: each row as shares of its label's clips. log: log10(1 + count). hide_diagonal:
    right answers (the diagonal and idle clips rejected) blanked. Whatever is shown, the colour
    scale is set by the mistakes: right answers (the idle -> rejected cell above all) never set it.
    """
    values = matrix.astype(np.float64)
    if normalise:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    if log:
        values = np.log10(1.0 + (values * 100 if normalise else values))
    right = expected_cells(rows, columns, idle)
    mistakes = values[~right]
    top = float(mistakes.max()) if mistakes.size and mistakes.max() > 0 else float(values.max() or 1.0)
    if hide_diagonal:
        values = np.where(right, np.nan, values)
    return values, top


def per_label_report(records: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per-label precision, recall, F1 and support of the ranking's top-1 (scikit-learn)."""
    from sklearn.metrics import precision_recall_fscore_support

    pred = records["ranked_top1"].astype(str)
    truth = records["label"].astype(str)
    present = [label for label in labels if label in set(truth)]
    if not present:
        return pd.DataFrame(columns=["label", "support", "precision", "recall", "f1"])
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=present, zero_division=0)
    return pd.DataFrame({"label": present, "support": support, "precision": precision, "recall": recall, "f1": f1})


def failures(records: pd.DataFrame) -> pd.DataFrame:
    """Every error (accepted, wrong) and rejection, with its reason, as a flat table."""
    rows = records[~records["correct"]].copy()
    rows["kind"] = np.where(rows["accepted"], "error", "rejection")
    rows["reason"] = np.where(rows["accepted"], "wrong label accepted", rows["rejection_reason"])
    columns = ["query", "kind", "reason", "label", "pred", "score", "margin", "proto_label", "proto_sim",
               "motion", "session", "model", "sample_id"]
    return rows[columns].reset_index(drop=True)


def filter_failures(table: pd.DataFrame, kinds=(), reasons=(), labels=()) -> pd.DataFrame:
    """Rows matching every non-empty filter (an empty filter keeps all)."""
    mask = np.ones(len(table), dtype=bool)
    for column, wanted in (("kind", kinds), ("reason", reasons), ("label", labels)):
        if wanted:
            mask &= table[column].isin(list(wanted)).to_numpy()
    return table[mask].reset_index(drop=True)


def label_spread(embeddings: np.ndarray, labels, prototype_labels: list[str], prototypes: np.ndarray) -> pd.DataFrame:
    """Each member's cosine similarity to its label's prototype (members of unknown labels skipped)."""
    index = {label: i for i, label in enumerate(prototype_labels)}
    labels = np.asarray(labels, dtype=str)
    known = np.array([label in index for label in labels], dtype=bool)
    rows = np.flatnonzero(known)
    proto = prototypes[[index[label] for label in labels[known]]]
    sims = np.einsum("nd,nd->n", embeddings[known], proto)
    return pd.DataFrame({"member": rows, "label": labels[known], "similarity": sims})


def spread_outliers(spread: pd.DataFrame, iqr_factor: float = 1.5) -> pd.DataFrame:
    """Members below Q1 - factor x IQR of their own label's similarities (Tukey's fence)."""
    stats = spread.groupby("label")["similarity"].quantile([0.25, 0.75]).unstack()
    fence = stats[0.25] - iqr_factor * (stats[0.75] - stats[0.25])
    low = spread["similarity"] < spread["label"].map(fence)
    return spread[low].sort_values("similarity").reset_index(drop=True)


def served_summary(records: pd.DataFrame) -> dict:
    """The served answers over these clips: acceptance, precision of accepted, right end to end."""
    accepted = records["accepted"].to_numpy()
    n, n_accepted = len(records), int(accepted.sum())
    right = int((accepted & (records["answer"] == records["label"]).to_numpy()).sum())
    return {"clips": n, "acceptance": n_accepted / n if n else float("nan"),
            "precision": right / n_accepted if n_accepted else float("nan"),
            "right": float(records["correct"].mean()) if n else float("nan"),
            "rejected": n - n_accepted}


def session_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per session (signer): clips, labels, the ranking's top-1 and the served answers' numbers."""
    from explorer import backend

    rows = []
    for session, part in records.groupby(records["session"].astype(str), sort=True):
        ranking = backend.ranking_metrics(part)
        served = served_summary(part)
        rows.append({"session": session, "clips": len(part), "labels": part["label"].nunique(),
                     "top1": ranking["top1"], "mrr": ranking["mrr"], "accepted": served["acceptance"],
                     "precision": served["precision"], "right": served["right"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- calibration


def observed_range(records: pd.DataFrame, column: str) -> tuple[float, float] | None:
    """The lowest and highest value of ``column`` among the clips that reached the decision."""
    values = records[column].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    # Outward to the 4 decimals the fields show, so a shown value that rounds an observed one is inside.
    return float(np.floor(values.min() * 1e4) / 1e4), float(np.ceil(values.max() * 1e4) / 1e4)


def acceptance_summary(accepted: np.ndarray, correct: np.ndarray) -> dict:
    """Acceptance and precision of accepted answers (right = the accepted answer is the clip's sign)."""
    accepted, correct = np.asarray(accepted, bool), np.asarray(correct, bool)
    n, n_accepted = len(accepted), int(accepted.sum())
    right = int((accepted & correct).sum())
    return {"acceptance": n_accepted / n if n else 0.0,
            "precision": right / n_accepted if n_accepted else float("nan"),
            "accepted_accuracy": right / n if n else 0.0, "n_accepted": n_accepted, "n_right": right}


Decide = Callable[[dict], tuple[np.ndarray, np.ndarray]]  # parameters -> (accepted, confidence)


def sweep_values(values: np.ndarray, n_points: int = 41) -> np.ndarray:
    """A grid over the observed values (their quantiles, rounded to the 4 decimals the fields show)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.array([0.0])
    return np.unique(np.round(np.quantile(values, np.linspace(0, 1, n_points)), 4))


def acceptance_curve(decide: Decide, params: dict, name: str, grid: np.ndarray, correct: np.ndarray,
                     progress: Progress = _no_progress) -> pd.DataFrame:
    """Acceptance and precision as parameter ``name`` sweeps ``grid`` (the others as in ``params``)."""
    rows = []
    for i, value in enumerate(grid):
        progress(i / max(len(grid), 1), f"Deciding again at {name}={value:.4f}")
        accepted, _ = decide({**params, name: float(value)})
        rows.append({"threshold": float(value), **acceptance_summary(accepted, correct)})
    progress(1.0, "done")
    return pd.DataFrame(rows)


def suggest_threshold(curve: pd.DataFrame, target_precision: float) -> dict | None:
    """The swept value with the highest acceptance whose precision reaches the target (the lowest
    such value on ties); None when none does."""
    ok = curve[(curve["precision"] >= target_precision) & (curve["n_accepted"] > 0)]
    if ok.empty:
        return None
    best = ok.sort_values(["acceptance", "threshold"], ascending=[False, True]).iloc[0]
    return best.to_dict()


def cached_scored(bundle_dir: str, data_path: str, queries: np.ndarray, progress: Progress = _no_progress):
    """The clips at ``queries`` ranked and decided by the engine's Ranker (backend.score_clips), memoised."""
    from explorer import backend

    queries = np.asarray(queries, dtype=np.int64)
    key = ("scored", str(bundle_dir), str(data_path), file_version(resolve(bundle_dir)),
           file_version(resolve(data_path)), hash(queries.tobytes()))
    return _memoised(key, lambda: backend.score_clips(cached_engine(bundle_dir), cached_dataset(data_path), queries,
                                                      progress))


def default_calibrated_dir(bundle_dir: Path) -> Path:
    """Where a calibrated copy goes by default: artifacts/ (gitignored), never over the source."""
    return PROJECT_ROOT / "artifacts" / f"{Path(bundle_dir).name}-calibrated"


def env_text(params: dict) -> str:
    """Parameters as .env lines (environment variables win over the bundle's values)."""
    return "".join(f"{name}={value}\n" for name, value in params.items())


def check_parameters(params: dict, allowed: tuple[str, ...], ranges: dict[str, tuple[float, float]]) -> None:
    """Refuse a parameter the rule does not have, or a threshold outside the range the data showed
    (a threshold below every score accepts everything; above every score, nothing)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ExplorerError(f"the decision rule has no parameter {', '.join(unknown)}; it has {', '.join(allowed)}")
    for name, (lo, hi) in ranges.items():
        if name not in params:
            continue
        value = float(params[name])
        if not np.isfinite(value) or value < lo - 1e-9 or value > hi + 1e-9:
            raise ExplorerError(f"{name}={value:g} is outside the range this data showed ({lo:.4f} to {hi:.4f}): "
                                "nothing was written. Pick a value the curves above cover.")


def _check_settings(params: dict) -> None:
    """The values must be valid settings (signseek.settings.Settings' own bounds)."""
    from pydantic import ValidationError

    from signseek.settings import Settings

    try:
        Settings(_env_file=None, **params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ExplorerError(f"not valid settings ({problems}): nothing was written") from None


def write_thresholds(bundle_dir: str | Path, params: dict, out_dir: str | Path | None = None,
                     allowed: tuple[str, ...] | None = None, ranges: dict | None = None) -> Path:
    """Write the decision rule's parameters into model_config.json "thresholds"; re-sign the manifest.

    ``params`` are written exactly as given (the values the page shows). ``allowed``: the names
    the rule has (default: every backend.rule_parameters); ``ranges``: name -> (low, high) the data
    showed, values outside refused. With ``out_dir`` the bundle is copied there first (the source
    stays as it was); without it the bundle is changed in place. Returns the written folder.
    """
    from explorer import backend

    check_parameters(params, allowed or backend.RULE_PARAMETERS + (backend.CLASSIFIER_PARAMETER,), ranges or {})
    _check_settings(params)
    source = resolve(bundle_dir)
    try:
        bundle = load_bundle(source)
    except BundleError as exc:
        raise ExplorerError(f"cannot load the bundle in {source}: {exc}") from exc
    target = source if out_dir is None else resolve(out_dir)
    if target != source:
        if target.exists() and any(target.iterdir()):
            raise ExplorerError(f"{target} is not empty: choose a new folder for the calibrated bundle")
        target.mkdir(parents=True, exist_ok=True)
        for name in bundle.manifest["files"]:
            shutil.copy2(source / name, target / name)
    config = json.loads((source / CONFIG).read_text())
    config["thresholds"] = {**(config.get("thresholds") or {}), **dict(params)}
    (target / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    manifest = bundle.manifest
    write_manifest(target, manifest.get("data"), manifest.get("metrics"),
                   f"explorer calibration: {env_text(params).strip().replace(chr(10), ' ')}",
                   files=sorted(manifest["files"]))
    zip_bundle(target)
    return target
