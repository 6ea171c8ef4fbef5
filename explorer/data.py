"""Cached loading and evaluation for the explorer, through the engine's and the trainer's own code.

    view = load_bundle_view("models")                       # verified bundle + reference table
    ev = evaluate("models", "sample_dataset/signs_sample.npz")
    ev.records        # one row per query clip: label, pred, ranked labels / refs / sims,
                      # top1_sim, margin, proto_label, proto_sim, motion, accepted, rejection_reason
    ev.embeddings     # [N, D] query embeddings (the engine's)
    clip_features("models", "sample_dataset/signs_sample.npz", 7)   # one clip's prepared features (viewer)
    trainer_report("models", "sample_dataset/signs_sample.npz")   # the trainer's metrics + per-class report

The `cached_*` wrappers put these behind Streamlit's caches (`st.cache_resource` for the bundle
and engine, `st.cache_data` for results), keyed by the files' versions so an edited bundle or
dataset is re-read. Everything else here is plain Python, usable from tests without Streamlit.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from signseek.bundle import CONFIG, MANIFEST, BundleError, load_bundle, write_manifest, zip_bundle
from signseek.paths import MODELS_DIR, PROJECT_ROOT, SAMPLE_DATASET

DEFAULT_DATA = SAMPLE_DATASET / "signs_sample.npz"
# Threshold names the calibration page writes (the engine's settings names).
CALIBRATED = ("SIM_THRESHOLD", "SIM_MARGIN")
# Rejections made before any search (signseek.engine.gates.input_gate): thresholds cannot change them.
INPUT_REASONS = ("no_hands", "low_motion")
REJECTED_COLUMN = "(rejected)"


class ExplorerError(RuntimeError):
    """A bundle or dataset the explorer cannot use; the message says what to fix."""


def resolve(path: str | Path) -> Path:
    """A path as given, or relative to the project root (the app may run from anywhere)."""
    path = Path(path).expanduser()
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


def load_bundle_view(bundle_dir: str | Path) -> BundleView:
    from signseek.settings import resolve_settings

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
    settings, sources = resolve_settings(bundle)
    # The gates, the re-ranking, and whatever else the bundle calibrated.
    names = ("SIM_THRESHOLD", "SIM_MARGIN", "MOTION_FLOOR", "PROTOTYPE_CHECK", "DTW_WEIGHT", "DTW_SCALE",
             "DTW_TOP_N", "DEFAULT_TOP_K")
    names += tuple(n for n in (bundle.config.get("thresholds") or {}) if n in sources and n not in names)
    return BundleView(bundle, references, {n: getattr(settings, n) for n in names},
                      {n: sources[n] for n in names})


# ---------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """The engine's verdict on the clips of a dataset (see the module docstring).

    ``records`` may hold a subset of the file's clips (`restrict`); ``embeddings[q]`` stays indexed
    by the clip's position q in the file (records' index, "query"). Prepared features are not kept
    here (100+ MB for the full signs.npz, copied on every cache read): `clip_features` makes one.
    """

    records: pd.DataFrame  # one row per clip, indexed by its position in the file ("query")
    embeddings: np.ndarray  # [N, D], every clip of the file
    labels: list[str] = field(default_factory=list)  # the bundle's labels, then the data's other labels

    def restrict(self, mask) -> Evaluation:
        return Evaluation(self.records[np.asarray(mask, dtype=bool)], self.embeddings, self.labels)


# Which clips the pages show: all, or those from sittings (label, session) no reference comes from.
CLIP_CHOICES = {"all": "all clips", "unseen": "sittings not in the references"}


def unseen_sittings(records: pd.DataFrame, references: pd.DataFrame) -> np.ndarray:
    """True for clips whose (label, session) pair no reference shares: recordings the bundle's
    references do not include, so the scores are not inflated by a clip finding itself."""
    seen = set(zip(references["label"].astype(str), references["session"].astype(str), strict=True))
    pairs = zip(records["label"].astype(str), records["session"].astype(str), strict=True)
    return np.array([pair not in seen for pair in pairs], dtype=bool)


def select_clips(evaluation: Evaluation, bundle: BundleView, clips: str) -> Evaluation:
    if clips == "all":
        return evaluation
    if clips == "unseen":
        return evaluation.restrict(unseen_sittings(evaluation.records, bundle.references))
    raise ExplorerError(f"unknown clip selection {clips!r}; choose one of {sorted(CLIP_CHOICES)}")


@dataclass
class TrainerReport:
    """The trainer's evaluation of the same bundle and file (`python -m trainer evaluate`)."""

    metrics: dict = field(default_factory=dict)  # top1, top5, mrr, encoder_top1, proto_top1, ...
    report: pd.DataFrame | None = None  # its per-class precision / recall / F1 (per_class.csv)
    note: str = ""  # why the numbers are missing, when they are


def outcome(accepted: bool, top1_correct: bool, correct: bool) -> str:
    """right (incl. an idle clip rejected), wrong (a wrong sign accepted), or rejected (by top-1)."""
    if correct:
        return "right"
    if accepted:
        return "wrong"
    return "rejected (top-1 right)" if top1_correct else "rejected (top-1 wrong)"


def evaluate(bundle_dir: str | Path, data_path: str | Path, engine=None, dataset=None) -> Evaluation:
    """Run the engine over every clip of ``data_path`` against the bundle's references.

    ``engine`` / ``dataset``: the loaded `Engine` for this bundle and the file's `SignDataset`,
    when the caller has them (else they are loaded).
    """
    from explorer import backend

    directory, path = resolve(bundle_dir), resolve(data_path)
    if not path.is_file():
        raise ExplorerError(f"dataset {path} does not exist: pick a .npz in the shared layout in the sidebar")
    return backend.evaluate(load_bundle_view(directory), path, engine, dataset)


def load_dataset(data_path: str | Path):
    """The dataset file as a `signseek.datasets.SignDataset` (the datasets engineer's importer)."""
    from signseek.datasets.errors import DatasetError
    from signseek.datasets.npz import import_npz

    path = resolve(data_path)
    if not path.is_file():
        raise ExplorerError(f"dataset {path} does not exist: pick a .npz in the shared layout in the sidebar")
    try:
        return import_npz(path)
    except DatasetError as exc:
        raise ExplorerError(f"cannot read the dataset {path}: {exc}") from exc


def trainer_report(bundle_dir: str | Path, data_path: str | Path) -> TrainerReport:
    """The trainer's metrics and per-class report (imports torch: only the pages that show them ask)."""
    from explorer import backend

    return backend.trainer_evaluation(load_bundle_view(resolve(bundle_dir)), resolve(data_path))


# ---------------------------------------------------------------------------- caches


@st.cache_resource(show_spinner="Loading the bundle...", max_entries=4)
def _cached_bundle(bundle_dir: str, version: str) -> BundleView:
    return load_bundle_view(bundle_dir)


def cached_bundle(bundle_dir: str) -> BundleView:
    return _cached_bundle(str(bundle_dir), file_version(resolve(bundle_dir)))


@st.cache_resource(show_spinner="Loading the engine...", max_entries=2)
def _cached_engine(bundle_dir: str, version: str):
    from explorer import backend

    return backend.load_engine(cached_bundle(bundle_dir))


@st.cache_resource(show_spinner="Reading the dataset...", max_entries=2)
def _cached_dataset(data_path: str, version: str):
    return load_dataset(data_path)


def clip_features(bundle_dir: str, data_path: str, query: int) -> np.ndarray:
    """Prepared features [L, F] of one clip of the file, as the engine prepares it (for the viewer)."""
    from signseek.features import prepare_sequence

    dataset = _cached_dataset(str(data_path), file_version(resolve(data_path)))
    return prepare_sequence(dataset.points(int(query)), cached_bundle(bundle_dir).bundle.feature_config)


@st.cache_data(show_spinner=False, max_entries=8)
def _cached_evaluation(bundle_dir: str, data_path: str, bundle_version: str, data_version: str) -> Evaluation:
    return evaluate(bundle_dir, data_path, _cached_engine(bundle_dir, bundle_version),
                    _cached_dataset(data_path, data_version))


def cached_evaluation(bundle_dir: str, data_path: str) -> Evaluation:
    return _cached_evaluation(str(bundle_dir), str(data_path), file_version(resolve(bundle_dir)),
                              file_version(resolve(data_path)))


@st.cache_data(show_spinner="Running the trainer's evaluation (cached afterwards)...", max_entries=8)
def _cached_trainer_report(bundle_dir: str, data_path: str, bundle_version: str, data_version: str) -> TrainerReport:
    return trainer_report(bundle_dir, data_path)


def cached_trainer_report(bundle_dir: str, data_path: str) -> TrainerReport:
    return _cached_trainer_report(str(bundle_dir), str(data_path), file_version(resolve(bundle_dir)),
                                  file_version(resolve(data_path)))


@st.cache_data(show_spinner="Projecting the embeddings...", max_entries=16)
def cached_projection(bundle_dir: str, data_path: str, clips: str, method: str, sample: int, seed: int) -> pd.DataFrame:
    evaluation = select_clips(cached_evaluation(bundle_dir, data_path), cached_bundle(bundle_dir), clips)
    return projection(evaluation, method, sample, seed)


@st.cache_data(show_spinner="Searching thresholds...", max_entries=32)
def cached_suggestion(bundle_dir: str, data_path: str, clips: str, target: float,
                      prototype_check: bool) -> dict | None:
    evaluation = select_clips(cached_evaluation(bundle_dir, data_path), cached_bundle(bundle_dir), clips)
    return suggest_thresholds(evaluation.records, target, prototype_check)


# ---------------------------------------------------------------------------- views of an evaluation


def sample_queries(n_total: int, sample: int, seed: int) -> np.ndarray:
    """A seeded, sorted subset of query indices (all of them when sample >= n_total)."""
    if sample >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=sample, replace=False))


def project(embeddings: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """[N, D] -> [N, 2] by PCA (scikit-learn), UMAP (umap-learn) or t-SNE (scikit-learn)."""
    n = len(embeddings)
    if n < 3:
        return np.pad(embeddings[:, :2], ((0, 0), (0, max(0, 2 - embeddings.shape[1]))))
    if method == "PCA":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    if method == "UMAP":
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), metric="cosine", random_state=seed,
                            n_jobs=1)
        return reducer.fit_transform(embeddings)
    if method == "t-SNE":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), metric="cosine", init="pca",
                    random_state=seed).fit_transform(embeddings)
    raise ExplorerError(f"unknown projection {method!r}; choose PCA, UMAP or t-SNE")


def projection(evaluation: Evaluation, method: str, sample: int, seed: int) -> pd.DataFrame:
    chosen = evaluation.records.index.to_numpy()[sample_queries(len(evaluation.records), sample, seed)]
    xy = project(evaluation.embeddings[chosen], method, seed)
    records = evaluation.records.loc[chosen]
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1], "query": chosen, "label": records["label"].to_numpy(),
        "session": records["session"].astype(str).to_numpy(), "outcome": records["outcome"].to_numpy(),
        "pred": records["pred"].to_numpy(),
    })


def confusion(records: pd.DataFrame, labels: list[str], served: bool) -> tuple[np.ndarray, list, list]:
    """Counts [true, predicted] (scikit-learn).

    served=True: the engine's answers, every rejection in a last "(rejected)" column.
    served=False: the top-1 of the ranking without gates (what the trainer's confusion counts).
    """
    from sklearn.metrics import confusion_matrix

    pred = prediction(records, served)
    rows = list(labels)
    columns = [*labels, REJECTED_COLUMN] if served else list(labels)
    matrix = confusion_matrix(records["label"].to_numpy(), pred, labels=columns)
    return matrix[: len(rows)], rows, columns


def prediction(records: pd.DataFrame, served: bool) -> np.ndarray:
    if served:
        return np.where(records["accepted"], records["answer"], REJECTED_COLUMN).astype(object)
    return records["ranked_top1"].to_numpy().astype(object)


def cell_queries(records: pd.DataFrame, true: str, pred: str, served: bool) -> pd.DataFrame:
    return records[(records["label"] == true).to_numpy() & (prediction(records, served) == pred)]


def confusion_errors(matrix: np.ndarray, rows: list[str], columns: list[str]) -> list[tuple[str, str]]:
    """Off-diagonal non-empty cells, largest first: (true, predicted)."""
    cells = [(int(matrix[r, c]), rows[r], columns[c]) for r in range(len(rows)) for c in range(len(columns))
             if matrix[r, c] and rows[r] != columns[c]]
    return [(t, p) for _, t, p in sorted(cells, key=lambda x: -x[0])]


def per_label_report(records: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per-label precision, recall, F1 and support of the ranking's top-1 (scikit-learn); the
    fallback when the trainer's report is not available."""
    from sklearn.metrics import precision_recall_fscore_support

    pred = records["ranked_top1"]
    present = [label for label in labels if label in set(records["label"]) | set(pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        records["label"], pred, labels=present, zero_division=0)
    return pd.DataFrame({"label": present, "support": support, "precision": precision, "recall": recall, "f1": f1})


def failures(records: pd.DataFrame) -> pd.DataFrame:
    """Every error (accepted, wrong) and rejection, with its reason, as a flat table."""
    rows = records[~records["correct"]].copy()
    rows["kind"] = np.where(rows["accepted"], "error", "rejection")
    rows["reason"] = np.where(rows["accepted"], "wrong label accepted", rows["rejection_reason"])
    columns = ["query", "kind", "reason", "label", "pred", "top1_sim", "margin", "proto_label", "proto_sim",
               "motion", "session", "sample_id"]
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


# ---------------------------------------------------------------------------- calibration


def regate(records: pd.DataFrame, sim_threshold: float, sim_margin: float, prototype_check: bool = True) -> np.ndarray:
    """Which queries the engine would accept with other SIM_THRESHOLD / SIM_MARGIN values.

    The engine's decision rule (signseek.engine.gates.decision_gate), vectorised over the records:
    clips stopped before search (no hands, low motion) and hands-only classifier answers keep
    their verdict; for the rest the top label must not be idle, its similarity must reach the
    threshold, the margin the margin, and (with PROTOTYPE_CHECK) the nearest prototype must agree.
    At the bundle's own thresholds this gives back the engine's verdicts (the tests check it).
    """
    searched = (records["model"] == "encoder") & ~records["rejection_reason"].isin(INPUT_REASONS)
    passes = (
        (records["rejection_reason"] != "idle")
        & (records["top1_sim"] >= sim_threshold)
        & (records["margin"] >= sim_margin)
    )
    if prototype_check:
        passes &= records["proto_label"] == records["pred"]
    return np.where(searched, passes, records["accepted"]).astype(bool)


def gate_summary(records: pd.DataFrame, accepted: np.ndarray) -> dict:
    n = len(records)
    n_accepted = int(accepted.sum())
    right = int((accepted & records["top1_correct"].to_numpy()).sum())
    return {"acceptance": n_accepted / n if n else 0.0,
            "precision": right / n_accepted if n_accepted else float("nan"),
            "accepted_accuracy": right / n if n else 0.0, "n_accepted": n_accepted, "n_right": right}


def threshold_curve(records: pd.DataFrame, sim_margin: float, prototype_check: bool = True,
                    n_points: int = 101) -> pd.DataFrame:
    """Acceptance and precision as SIM_THRESHOLD sweeps the observed similarities (margin fixed)."""
    sims = records["top1_sim"].to_numpy()
    sims = sims[np.isfinite(sims)]
    grid = np.unique(np.quantile(sims, np.linspace(0, 1, n_points))) if len(sims) else np.array([0.0])
    rows = []
    for t in grid:
        summary = gate_summary(records, regate(records, float(t), sim_margin, prototype_check))
        rows.append({"threshold": float(t), **summary})
    return pd.DataFrame(rows)


def suggest_thresholds(records: pd.DataFrame, target_precision: float, prototype_check: bool = True) -> dict | None:
    """The (SIM_THRESHOLD, SIM_MARGIN) pair with the highest acceptance whose precision reaches
    the target, over a grid of observed values; None when no pair reaches it."""
    sims = records["top1_sim"].to_numpy()
    margins = records["margin"].to_numpy()
    sims, margins = sims[np.isfinite(sims)], margins[np.isfinite(margins)]
    if not len(sims):
        return None
    t_grid = np.unique(np.quantile(sims, np.linspace(0, 1, 41)))
    m_grid = np.unique(np.concatenate([[0.0], np.quantile(margins, np.linspace(0, 0.9, 19))]))
    best = None
    for m in m_grid:
        for t in t_grid:
            summary = gate_summary(records, regate(records, float(t), float(m), prototype_check))
            if summary["n_accepted"] and summary["precision"] >= target_precision and (
                best is None or summary["acceptance"] > best["acceptance"]
                or (summary["acceptance"] == best["acceptance"] and t < best["SIM_THRESHOLD"])
            ):
                best = {"SIM_THRESHOLD": round(float(t), 4), "SIM_MARGIN": round(float(m), 4), **summary}
    return best


def default_calibrated_dir(bundle_dir: Path) -> Path:
    """Where a calibrated copy goes by default: artifacts/ (gitignored), never over the source."""
    return PROJECT_ROOT / "artifacts" / f"{Path(bundle_dir).name}-calibrated"


def env_text(thresholds: dict) -> str:
    """Thresholds as .env lines (environment variables win over the bundle's values)."""
    return "".join(f"{name}={thresholds[name]}\n" for name in CALIBRATED if name in thresholds)


def write_thresholds(bundle_dir: str | Path, thresholds: dict, out_dir: str | Path | None = None) -> Path:
    """Write thresholds into model_config.json "thresholds" and re-sign the manifest.

    With ``out_dir`` the bundle is copied there first (the source stays as it was); without it
    the bundle is changed in place. The manifest keeps its data info and metrics; the zip is
    rebuilt. Returns the written bundle's folder, which `load_bundle` then accepts.
    """
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
    config["thresholds"] = {**(config.get("thresholds") or {}),
                            **{k: float(v) for k, v in thresholds.items() if k in CALIBRATED}}
    (target / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    manifest = bundle.manifest
    write_manifest(target, manifest.get("data"), manifest.get("metrics"),
                   f"explorer calibration: {env_text(thresholds).strip().replace(chr(10), ' ')}",
                   files=sorted(manifest["files"]))
    zip_bundle(target)
    return target
