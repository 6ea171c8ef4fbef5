"""Checkpoint -> the bundle in models/ (the format the engine reads; see signseek/bundle.py).

    python -m trainer export --checkpoint artifacts/encoder_signs/best.pt --out models \
        --classifier fingerspelling=artifacts/fingerspelling_mlp/best.pt

Writes sign_encoder.onnx (opset 18, dynamic batch and time), sign_encoder.int8.onnx (dynamic
int8 quantisation), sign_encoder.ts (TorchScript), global_stats.npz, the reference files
(embeddings computed by the exported ONNX model, i.e. by what serves them), classifier heads,
model_config.json, export_manifest.json (sha256 of every file, the data's sha256, held-out
metrics incl. the int8 accuracy change) and sign_encoder_bundle.zip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from signseek import bundle as bundle_io
from signseek.datasets.splits import pick_references
from signseek.features import FeatureConfig, FeatureStats

from .config import TrainConfig
from .data import (
    IDLE_LABELS,
    category_of,
    file_sha256,
    load_clips,
    pad_batch,
    resolve_data_path,
    session_split,
)
from .models import HybridEncoder
from .train import build_model

ONNX_OPSET = 18


class ExportError(RuntimeError):
    """The checkpoint cannot be exported; the message says why."""


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TrainConfig(**ckpt["config"])
    fcfg = FeatureConfig.from_dict(ckpt["feature_config"])
    model = build_model(cfg, fcfg, len(ckpt["labels"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt


def export_onnx(model: nn.Module, path: Path, in_dim: int, output: str) -> Path:
    features = torch.randn(2, 16, in_dim)
    mask = torch.ones(2, 16)
    mask[1, 12:] = 0
    torch.onnx.export(
        model, (features, mask), str(path), dynamo=False, opset_version=ONNX_OPSET,
        input_names=["features", "mask"], output_names=[output],
        dynamic_axes={"features": {0: "batch", 1: "time"}, "mask": {0: "batch", 1: "time"}, output: {0: "batch"}},
    )
    return path


def export_torchscript(model: nn.Module, path: Path, in_dim: int) -> Path:
    try:
        scripted = torch.jit.script(model)
    except Exception:  # noqa: BLE001 - scripting is best effort; tracing keeps dynamic shapes here
        example = (torch.randn(2, 16, in_dim), torch.ones(2, 16))
        scripted = torch.jit.trace(model, example, check_trace=False)
    scripted.save(str(path))
    return path


def quantize_int8(src: Path, dst: Path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The fixed view's projection multiplies raw normalised features (wide range, a few large
    # values): int8 activations there cost several points of top-1, so it stays float.
    graph = onnx.load(str(src)).graph
    keep_float = [n.name for n in graph.node if n.op_type == "MatMul" and any("projection" in i for i in n.input)]
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, nodes_to_exclude=keep_float)
    return dst


def onnx_embed(path: Path, sequences: list[np.ndarray], stats: FeatureStats, batch: int = 256) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, len(sequences), batch):
        x, mask = pad_batch([stats.apply(s) for s in sequences[start : start + batch]])
        out.append(session.run(None, {"features": x.numpy(), "mask": mask.numpy()})[0])
    return np.concatenate(out).astype(np.float32)


def _export_classifier(name: str, ckpt_path: str, out: Path) -> tuple[dict, dict]:
    model, ckpt = load_checkpoint(ckpt_path)
    fcfg = FeatureConfig.from_dict(ckpt["feature_config"])
    onnx_name, stats_name = f"classifier_{name}.onnx", f"classifier_{name}_stats.npz"
    export_onnx(model, out / onnx_name, fcfg.feature_dim, "logits")
    FeatureStats(ckpt["stats"]["mean"], ckpt["stats"]["std"]).save(out / stats_name)
    spec = {"file": onnx_name, "labels": list(ckpt["labels"]), "feature_config": fcfg.to_dict(),
            "stats_file": stats_name, "kind": ckpt["config"]["classifier"], "training": ckpt["config"]}
    history = ckpt["progress"]["history"]
    metrics = {"val_accuracy": ckpt["progress"]["best"], "epochs": len(history)}
    return spec, metrics


def export_bundle(
    checkpoint: str | Path,
    out: str | Path,
    classifiers: dict[str, str] | None = None,
    references: str = "trainval",
    command: str = "",
    evaluate: bool = True,
    max_refs_per_label: int = 0,
    calibrate_shots: int = 3,
    fixed_mix: float | None = None,
    calibration_from: str | Path | None = None,
    cross_fit: Sequence[str | Path] = (),
) -> Path:
    model, ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig(**ckpt["config"])
    if cfg.task != "encoder":
        raise ExportError(f"{checkpoint} holds a {cfg.task}, not an encoder; ship it with --classifier")
    fcfg = FeatureConfig.from_dict(ckpt["feature_config"])
    stats = FeatureStats(np.asarray(ckpt["stats"]["mean"]), np.asarray(ckpt["stats"]["std"]))
    folds = load_cross_fit_folds(cross_fit, ckpt, calibration_from, calibrate_shots)  # refused before out/ is touched
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # a bundle is written whole: stale files would fail the manifest
        if old.is_file() and old.name != ".gitkeep":
            old.unlink()

    data_path = resolve_data_path(cfg.data)
    clips = load_clips(data_path, fcfg)
    heldout = set(ckpt.get("heldout_labels") or [])
    calibration = {}
    rule_calibration = {}
    if calibration_from:
        source = json.loads(Path(calibration_from).read_text())
        if "calibration" not in source:
            raise ExportError(f"{calibration_from} records no calibration to reuse")
        calibration = {**source["calibration"], "source": str(calibration_from)}
        if "decision_calibration" in source:
            rule_calibration = {**source["decision_calibration"], "source": str(calibration_from)}
    elif calibrate_shots > 0:
        calibration = calibrate(model, stats, fcfg, clips, cfg, ckpt, calibrate_shots,
                                mixes=None if fixed_mix is None else (fixed_mix,))
    mix = calibration["best"]["mix"] if calibration else (fixed_mix or 0.0)
    served = HybridEncoder(model, fcfg.feature_dim, mix, view=cfg.fixed_view).eval()

    onnx_path = export_onnx(served, out / bundle_io.ENCODER_ONNX, fcfg.feature_dim, "embedding")
    export_torchscript(served, out / bundle_io.ENCODER_TS, fcfg.feature_dim)
    int8_path = quantize_int8(onnx_path, out / bundle_io.ENCODER_INT8)
    stats.save(out / bundle_io.STATS)
    keep = pick_references(clips.labels, clips.sessions, cfg.split, references, max_refs_per_label)
    keep = np.array([i for i in keep if clips.labels[i] not in heldout], dtype=np.int64)
    ref_features = [clips.features[i] for i in keep]
    embeddings = onnx_embed(onnx_path, ref_features, stats)
    rows = [
        {"label": clips.labels[i], "category": category_of(clips.labels[i]), "source": Path(clips.source).stem,
         "session": int(clips.sessions[i]), "sample_id": clips.ids[i]}
        for i in keep
    ]
    bundle_io.write_reference_files(out, embeddings, rows, ref_features)

    config = {
        "format_version": bundle_io.FORMAT_VERSION,
        "model_name": f"signseek-gru-{Path(cfg.data).stem}",
        "embedding_dim": int(embeddings.shape[1]),
        "feature_config": fcfg.to_dict(),
        "idle_labels": list(IDLE_LABELS),
        "categories": {label: category_of(label) for label in sorted(set(clips.labels[keep].tolist()))},
        "references": references,
        "max_refs_per_label": max_refs_per_label,
        "heldout_labels": sorted(heldout),
        "val_labels": sorted(ckpt.get("val_labels") or []),
        "training": ckpt["config"],
        "encoder": {"kind": "HybridEncoder(SignEncoder)", "fixed_mix": mix, "fixed_view": served.view,
                    "fixed_segments": served.n_segments, "hand_descriptor": bool(cfg.hand_descriptor)},
        "classifiers": {},
    }
    if calibration:
        best = calibration["best"]
        config["thresholds"] = {"DTW_WEIGHT": best["DTW_WEIGHT"], "DTW_SCALE": best["DTW_SCALE"]}
        config["calibration"] = calibration
    if not rule_calibration and ckpt.get("val_labels") and calibrate_shots > 0:
        rule_calibration = calibrate_rule(onnx_path, stats, fcfg, clips, cfg, ckpt, config.get("thresholds") or {},
                                          max_refs_per_label, folds, mix)
    if rule_calibration:
        config.setdefault("thresholds", {}).update(rule_calibration["settings"])
        config["decision_calibration"] = rule_calibration
    metrics: dict = {"encoder": {"val_top1": ckpt["progress"]["best"], "epochs": len(ckpt["progress"]["history"])}}
    if calibration:
        metrics["calibration_top1"] = calibration["best"]["top1"]
    for name, path in (classifiers or {}).items():
        spec, cmetrics = _export_classifier(name, path, out)
        config["classifiers"][name] = spec
        metrics[f"classifier_{name}"] = cmetrics
    (out / bundle_io.CONFIG).write_text(json.dumps(config, indent=2) + "\n")

    if evaluate:
        metrics.update(heldout_metrics(out, clips, cfg.split, stats, onnx_path, int8_path, heldout))
    data_info = {"path": str(Path(cfg.data)), "sha256": file_sha256(data_path), "n_sequences": len(clips),
                 "n_references": len(keep), "references": references,
                 "max_refs_per_label": max_refs_per_label, "split": cfg.split}
    bundle_io.write_manifest(out, data_info, metrics, command)
    bundle_io.zip_bundle(out)
    return out


@torch.no_grad()
def _learned_and_fixed(model: nn.Module, sequences: list[np.ndarray], stats: FeatureStats, in_dim: int,
                       view: str) -> tuple[np.ndarray, np.ndarray]:
    probe = HybridEncoder(model, in_dim, 0.0, view=view).eval()
    x, mask = pad_batch([stats.apply(s) for s in sequences])
    return model(x, mask).numpy(), probe.fixed(x, mask).numpy()


def calibrate(model: nn.Module, stats: FeatureStats, fcfg: FeatureConfig, clips, cfg: TrainConfig, ckpt: dict,
              shots: int, mixes=None) -> dict:
    """Tune the fixed-view mix and the engine's DTW blend, never on the held-out test labels.

    With few-shot validation labels (trained with val_label_fraction > 0): enrolment episodes on
    them, 1 and `shots` clips a label, seeds 0-2, the rest queried; the same question the test
    labels answer, on other labels. Without: one episode of seen labels, `shots` clips a label
    from the train sessions, the validation sessions queried (this over-weights DTW for signs
    enrolled later, see BENCHMARKS.md).
    """
    from signseek.datasets.splits import few_shot_episode

    from .evaluate import MIXES, calibrate_blend

    heldout = set(ckpt.get("heldout_labels") or [])
    val_labels = list(ckpt.get("val_labels") or [])
    # Each branch picks the clips to embed (`rows`) and its episodes as positions into them.
    if val_labels:
        rows = np.flatnonzero(np.isin(clips.labels, val_labels))
        episodes = [few_shot_episode(clips.labels[rows], k, seed) for k in sorted({1, shots}) for seed in (0, 1, 2)]
        parts = [(e.references, e.queries) for e in episodes]
        protocol = (f"few-shot validation labels {val_labels} (never trained on, not the test labels): "
                    f"{sorted({1, shots})} enrolment clips a label, seeds 0-2, the rest queried")
    else:
        split = session_split(clips.labels, clips.sessions, cfg.split)
        queries = np.array([i for i in split["val"] if clips.labels[i] not in heldout], dtype=np.int64)
        if len(queries) == 0:
            return {}
        rng = np.random.default_rng(0)
        enrol = []
        for label in sorted(set(clips.labels[queries].tolist())):
            candidates = np.array([i for i in split["train"] if clips.labels[i] == label])
            enrol.extend(rng.choice(candidates, size=min(shots, len(candidates)), replace=False).tolist())
        rows = np.concatenate([np.asarray(enrol, dtype=np.int64), queries])
        parts = [(np.arange(len(enrol)), np.arange(len(enrol), len(rows)))]
        protocol = (f"seen labels only: {shots} enrolment clips a label from the train sessions, "
                    "the validation sessions queried (seed 0)")
    feats = [clips.features[i] for i in rows]
    labels = clips.labels[rows]
    learned, fixed = _learned_and_fixed(model, feats, stats, fcfg.feature_dim, cfg.fixed_view)
    episodes = [tuple(([feats[i] for i in part], labels[part].tolist(), learned[part], fixed[part])
                      for part in (enrol_part, query_part)) for enrol_part, query_part in parts]
    result = calibrate_blend(stats, fcfg, episodes, mixes=MIXES if mixes is None else mixes)
    result["protocol"] = protocol
    if val_labels and len({g["mix"] for g in result["grid"]}) > 1:
        _prefer_openset_mix(result, model, stats, fcfg, clips, cfg, heldout, val_labels)
    return result


def _prefer_openset_mix(result: dict, model: nn.Module, stats: FeatureStats, fcfg: FeatureConfig, clips,
                        cfg: TrainConfig, heldout: set, val_labels: list[str], tolerance: float = 0.01) -> None:
    """Among the grid points within ``tolerance`` of the best few-shot top-1, take the mix whose
    embedding best tells known signs from unknown ones on the validation episodes
    (`signseek.evaluation.validation_episodes`, AUROC of the cosine): the hand-shape view helps
    rejection, and a point of few-shot top-1 is worth less than a confident wrong answer avoided."""
    from signseek.evaluation import Evaluation, validation_episodes
    from signseek.metrics import auroc
    from signseek.settings import Settings

    usable = clips.subset(np.flatnonzero(~np.isin(clips.labels, sorted(heldout))))
    learned, fixed = _learned_and_fixed(model, usable.features, stats, fcfg.feature_dim, cfg.fixed_view)
    normalised = [stats.apply(f) for f in usable.features]
    ev = Evaluation(None, fcfg, stats, None, Settings(_env_file=None, DTW_ENABLED=False), tuple(IDLE_LABELS))
    from .evaluate import _unit

    aurocs = {}
    for mix in sorted({g["mix"] for g in result["grid"]}):
        scored = validation_episodes(ev, usable, val_labels, cfg.split, 32, (_unit(learned + mix * fixed), normalised))
        scored = scored.subset(~np.isin(scored.truth, IDLE_LABELS))
        u = scored.unknown_score
        aurocs[mix] = auroc(u[scored.known], u[~scored.known])
    top = max(g["top1"] for g in result["grid"])
    allowed = [g for g in result["grid"] if g["top1"] >= top - tolerance]
    best = max(allowed, key=lambda g: (round(aurocs[g["mix"]], 4), round(g["top1"], 6), -g["DTW_WEIGHT"]))
    result["openset_auroc_by_mix"] = {str(m): a for m, a in aurocs.items()}
    result["selection"] = (f"the mix with the best validation open-set AUROC among grid points within {tolerance} "
                           "of the best few-shot top-1")
    result["best"] = best


def load_cross_fit_folds(paths: Sequence[str | Path], ckpt: dict, calibration_from, calibrate_shots: int) -> list:
    """(path, model, checkpoint) of each cross-fit fold, checked against the exported checkpoint
    ``ckpt``: ExportError when the folds would be ignored or cannot be pooled with it."""
    if not paths:
        return []
    if calibration_from or calibrate_shots <= 0 or not ckpt.get("val_labels"):
        raise ExportError("--cross-fit fits the decision rule on validation labels: it needs a checkpoint trained "
                          "with val_label_fraction > 0 and no --calibration-from / --calibrate-shots 0")
    heldout = sorted(ckpt.get("heldout_labels") or [])
    folds = []
    for path in paths:
        model, fold = load_checkpoint(path)
        if sorted(fold.get("heldout_labels") or []) != heldout or not fold.get("val_labels"):
            raise ExportError(f"{path}: a cross-fit fold must hold out the same test labels ({heldout}) "
                              "and have validation labels (train it with val_fold=N val_folds=K)")
        if set(fold["val_labels"]) & set(ckpt["val_labels"]):
            raise ExportError(f"{path}: its validation labels overlap this checkpoint's; use another val_fold")
        folds.append((path, model, fold))
    return folds


def calibrate_rule(onnx_path: Path, stats: FeatureStats, fcfg: FeatureConfig, clips, cfg: TrainConfig,
                   ckpt: dict, thresholds: dict, max_refs_per_label: int, folds: Sequence[tuple] = (),
                   mix: float = 0.0) -> dict:
    """The decision rule's settings from the few-shot validation labels, never the test labels
    (`signseek.evaluation.calibrate_study`), embedded by the served encoder (the exported ONNX file).

    ``folds``: `load_cross_fit_folds` of checkpoints of the same config trained with another
    ``val_fold``; each is served as this bundle is (the same fixed-view ``mix``, its own feature
    stats) and scores its own validation labels, pooled with this one's (`calibrate_study`)."""
    import tempfile

    from signseek.engine import Encoder
    from signseek.evaluation import Evaluation, calibrate_study
    from signseek.settings import Settings

    heldout = sorted(ckpt.get("heldout_labels") or [])
    settings = Settings(_env_file=None, **thresholds)
    ev = Evaluation(Encoder.load(onnx_path, None, False, 2), fcfg, stats, None, settings, tuple(IDLE_LABELS))
    usable = clips.subset(np.flatnonzero(~np.isin(clips.labels, heldout)))
    with tempfile.TemporaryDirectory(prefix="signseek-crossfit-") as tmp:
        fold_evals = []
        for i, (_, model, fold) in enumerate(folds):
            fold_stats = FeatureStats(np.asarray(fold["stats"]["mean"]), np.asarray(fold["stats"]["std"]))
            served = HybridEncoder(model, fcfg.feature_dim, mix, view=TrainConfig(**fold["config"]).fixed_view).eval()
            fold_onnx = export_onnx(served, Path(tmp) / f"fold{i}.onnx", fcfg.feature_dim, "embedding")
            fold_evals.append((Evaluation(Encoder.load(fold_onnx, None, False, 2), fcfg, fold_stats, None, settings,
                                          tuple(IDLE_LABELS)), sorted(fold["val_labels"])))
        fit = calibrate_study(ev, usable, sorted(ckpt.get("val_labels") or []), cfg.split, max_refs_per_label,
                              fold_evals)
    if folds:
        fit["cross_fit"]["checkpoints"] = [str(path) for path, _, _ in folds]
    return fit


def heldout_metrics(out: Path, clips, split_mode: str, stats: FeatureStats, fp32: Path, int8: Path,
                    heldout: set) -> dict:
    """Encoder-only top-1 on the held-out test sessions, fp32 vs int8 (the int8 accuracy change)."""
    split = session_split(clips.labels, clips.sessions, split_mode)
    test = np.array([i for i in split["test"] if clips.labels[i] not in heldout], dtype=np.int64)
    if len(test) == 0:
        return {}
    refs = np.load(out / bundle_io.EMBEDDINGS)
    import csv

    with open(out / bundle_io.EMBEDDINGS_MAP) as fh:
        ref_labels = np.array([row["label"] for row in csv.DictReader(fh)])
    queries = [clips.features[i] for i in test]
    result = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        emb = onnx_embed(path, queries, stats)
        if name == "int8":
            # int8 queries against int8 references: what a deployment of the int8 model serves
            ref_emb = onnx_embed(path, [f for f in _ref_features(out)], stats)
        else:
            ref_emb = refs
        predicted = ref_labels[(emb @ ref_emb.T).argmax(axis=1)]
        result[f"test_encoder_top1_{name}"] = float(np.mean(predicted == clips.labels[test]))
    result["int8_top1_change"] = result["test_encoder_top1_int8"] - result["test_encoder_top1_fp32"]
    result["n_test_queries"] = int(len(test))
    return result


def _ref_features(out: Path) -> list[np.ndarray]:
    with np.load(out / bundle_io.REFERENCE_FEATURES) as data:
        feats, offsets = data["features"], data["offsets"]
    return [feats[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
