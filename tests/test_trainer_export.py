"""trainer.export + evaluate: ONNX/TorchScript parity, the bundle loads and refuses tampering,
the evaluate CLI's JSON contract on the shipped models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from signseek.bundle import BundleError, load_bundle
from signseek.features import FeatureConfig
from trainer.config import ConfigError, load_config
from trainer.evaluate import run_evaluation
from trainer.export import ExportError, export_bundle, load_checkpoint
from trainer.models import HybridEncoder
from trainer.train import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "trainer_signs_tiny.npz"  # 52 real clips of signs.npz (MIT)
SAMPLE = ROOT / "sample_dataset" / "signs_sample.npz"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    overrides = [f"data={TINY}", "hidden=32", "batch_size=8", "epochs=2", "progress=false", "num_threads=1",
                 f"out_dir={tmp / 'run'}", f"log_dir={tmp / 'runs'}"]
    # What ships: the hand-shape descriptor as input and as the fixed view.
    out = train(load_config(ROOT / "configs" / "encoder_signs.yaml", overrides))
    clf = train(load_config(None, [*overrides, "task=classifier", "classifier=mlp", f"out_dir={tmp / 'clf'}",
                                   "features.hands_only=true", "hand_descriptor=false", "fixed_view=features"]))
    bundle = export_bundle(out / "best.pt", tmp / "bundle", classifiers={"fingerspelling": str(clf / "best.pt")},
                           command="pytest", max_refs_per_label=4, fixed_mix=1.0)  # exercise the fixed view
    return out / "best.pt", bundle


@pytest.mark.parametrize("length", [9, 200])
def test_onnx_and_torchscript_match_torch(tiny_bundle, length):
    ckpt, bundle = tiny_bundle
    encoder, saved = load_checkpoint(ckpt)
    in_dim = FeatureConfig.from_dict(saved["feature_config"]).feature_dim
    spec = json.loads((bundle / "model_config.json").read_text())["encoder"]
    assert spec["fixed_view"] == "handshape" and spec["hand_descriptor"]
    model = HybridEncoder(encoder, in_dim, spec["fixed_mix"], view=spec["fixed_view"]).eval()  # what export ships
    rng = np.random.default_rng(length)
    x = rng.normal(size=(3, length, in_dim)).astype(np.float32)
    mask = np.ones((3, length), np.float32)
    mask[1, length // 2 :] = 0  # one padded sequence in the batch
    with torch.no_grad():
        expected = model(torch.from_numpy(x), torch.from_numpy(mask)).numpy()
    got = ort.InferenceSession(str(bundle / "sign_encoder.onnx")).run(None, {"features": x, "mask": mask})[0]
    assert got.shape == (3, 256)
    assert np.abs(got - expected).max() < 1e-4
    scripted = torch.jit.load(str(bundle / "sign_encoder.ts"))
    with torch.no_grad():
        ts = scripted(torch.from_numpy(x), torch.from_numpy(mask)).numpy()
    assert np.abs(ts - expected).max() < 1e-4
    int8 = ort.InferenceSession(str(bundle / "sign_encoder.int8.onnx")).run(None, {"features": x, "mask": mask})[0]
    assert int8.shape == (3, 256) and np.isfinite(int8).all()


def test_bundle_loads_with_classifier_and_metrics(tiny_bundle):
    _, bundle_dir = tiny_bundle
    bundle = load_bundle(bundle_dir)
    assert bundle.embeddings.shape[1] == 256
    assert len(bundle.rows) <= 4 * 5 and "-" in bundle.idle_labels
    assert {r["category"] for r in bundle.rows} <= {"word", "letter", "idle"}
    assert bundle.classifiers["fingerspelling"].feature_config.hands_only
    manifest = json.loads((bundle_dir / "export_manifest.json").read_text())
    assert len(manifest["data"]["sha256"]) == 64
    assert "int8_top1_change" in manifest["metrics"]
    assert json.loads((bundle_dir / "model_config.json").read_text())["training"]["hidden"] == 32
    assert (bundle_dir / "sign_encoder_bundle.zip").stat().st_size > 0


def test_tampered_bundle_is_refused(tiny_bundle, tmp_path):
    import shutil

    _, bundle_dir = tiny_bundle
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    embeddings = np.load(copy / "embeddings.npy")
    embeddings[0, 0] += 1.0
    np.save(copy / "embeddings.npy", embeddings)
    with pytest.raises(BundleError, match="embeddings.npy"):
        load_bundle(copy)


def test_fewshot_evaluation_reports_baselines(tiny_bundle, tmp_path):
    _, bundle_dir = tiny_bundle
    result = run_evaluation(bundle_dir, TINY, protocol="fewshot", shots=2, seed=0, out_dir=tmp_path / "rep")
    for key in ("top1", "encoder_top1", "dtw_1nn_top1", "euclid_1nn_top1", "pos_sim", "neg_sim", "inst_at_1"):
        assert 0.0 <= result[key] <= 1.0 or key == "neg_sim", key
    assert (tmp_path / "rep" / "confusion.png").exists() and (tmp_path / "rep" / "per_class.csv").exists()


def test_calibration_uses_fewshot_validation_labels(tmp_path):
    """With validation labels the export tunes mix and DTW blend on episodes of those labels only."""
    overrides = [f"data={TINY}", "hidden=32", "batch_size=8", "epochs=1", "progress=false", "num_threads=1",
                 "holdout_label_fraction=0.25", "val_label_fraction=0.34", f"out_dir={tmp_path / 'run'}",
                 f"log_dir={tmp_path / 'runs'}"]
    out = train(load_config(ROOT / "configs" / "encoder_signs.yaml", overrides))
    ckpt = torch.load(out / "best.pt", weights_only=False)
    held, val = set(ckpt["heldout_labels"]), set(ckpt["val_labels"])
    assert held and val and not held & val and not (held | val) & set(ckpt["labels"])
    bundle = export_bundle(out / "best.pt", tmp_path / "bundle", max_refs_per_label=4, evaluate=False)
    config = json.loads((bundle / "model_config.json").read_text())
    assert config["val_labels"] == sorted(val)
    calibration = config["calibration"]
    assert "validation labels" in calibration["protocol"] and calibration["n_episodes"] == 6
    assert config["thresholds"]["DTW_WEIGHT"] == calibration["best"]["DTW_WEIGHT"]
    assert {g["mix"] for g in calibration["grid"]} == {0.0, 0.5, 1.0, 1.5, 2.0}
    # the decision rule is fitted on the validation labels too, and served from the bundle
    rule = config["decision_calibration"]
    assert "validation label" in rule["protocol"] and rule["n_unknown"] > 0 and rule["n_known"] > 0
    assert {k: config["thresholds"][k] for k in rule["settings"]} == rule["settings"]
    assert set(rule["settings"]) == {"CONFIDENCE_TEMPERATURE", "MARGIN_WEIGHT", "SIM_THRESHOLD", "UNKNOWN_SCALE",
                                     "CATEGORY_SIM_OFFSET", "MIN_CONFIDENCE", "DENSITY_WEIGHT"}
    assert rule["density"]["DENSITY_WEIGHT"] == rule["settings"]["DENSITY_WEIGHT"] and len(rule["density"]["grid"]) > 1
    reused = export_bundle(out / "best.pt", tmp_path / "reused", max_refs_per_label=4, evaluate=False,
                           calibration_from=bundle / "model_config.json")
    again = json.loads((reused / "model_config.json").read_text())
    assert again["encoder"]["fixed_mix"] == config["encoder"]["fixed_mix"]
    assert again["decision_calibration"]["settings"] == rule["settings"]
    assert again["calibration"]["source"].endswith("model_config.json")


def test_cross_fit_pools_the_validation_episodes_of_other_folds(tmp_path):
    """An encoder trained with another val_fold scores its own validation labels as unknown signs;
    the export pools those episodes with its own before fitting the rule. A fold with this
    checkpoint's validation labels, or one that never held any out, is refused by name."""
    overrides = [f"data={TINY}", "hidden=32", "batch_size=8", "epochs=1", "progress=false", "num_threads=1",
                 "holdout_label_fraction=0.25", "val_label_fraction=0.34", "val_folds=2", f"log_dir={tmp_path / 'runs'}"]
    runs = [train(load_config(ROOT / "configs" / "encoder_signs.yaml", [*overrides, f"val_fold={f}",
                                                                         f"out_dir={tmp_path / f'fold{f}'}"]))
            for f in (0, 1)]
    folds = [torch.load(r / "best.pt", weights_only=False) for r in runs]
    assert folds[0]["heldout_labels"] == folds[1]["heldout_labels"]
    assert folds[0]["val_labels"] and folds[1]["val_labels"]
    assert not set(folds[0]["val_labels"]) & set(folds[1]["val_labels"])
    assert set(folds[1]["val_labels"]) <= set(folds[0]["labels"])  # fold 0 trained on what fold 1 holds out
    single = export_bundle(runs[0] / "best.pt", tmp_path / "single", max_refs_per_label=4, evaluate=False)
    pooled = export_bundle(runs[0] / "best.pt", tmp_path / "pooled", max_refs_per_label=4, evaluate=False,
                           cross_fit=[runs[1] / "best.pt"])
    one = json.loads((single / "model_config.json").read_text())["decision_calibration"]
    both = json.loads((pooled / "model_config.json").read_text())["decision_calibration"]
    assert "cross_fit" not in one
    assert both["cross_fit"]["folds"] == [sorted(folds[0]["val_labels"]), sorted(folds[1]["val_labels"])]
    assert both["n_unknown"] > one["n_unknown"] and both["n_known"] > one["n_known"]
    assert len(both["cross_fit"]["n_queries"]) == 2 and "cross-fit" in both["protocol"]
    with pytest.raises(ExportError, match="overlap"):
        export_bundle(runs[0] / "best.pt", tmp_path / "same", max_refs_per_label=4, evaluate=False,
                      cross_fit=[runs[0] / "best.pt"])
    with pytest.raises(ExportError, match="cross-fit"):
        export_bundle(runs[0] / "best.pt", tmp_path / "reused", max_refs_per_label=4, evaluate=False,
                      calibration_from=pooled / "model_config.json", cross_fit=[runs[1] / "best.pt"])
    with pytest.raises(ExportError, match="overlap"):  # refused before the bundle already there is touched
        export_bundle(runs[0] / "best.pt", pooled, max_refs_per_label=4, evaluate=False, cross_fit=[runs[0] / "best.pt"])
    assert load_bundle(pooled).config["decision_calibration"] == both
    with pytest.raises(ConfigError, match="val_fold"):
        load_config(ROOT / "configs" / "encoder_signs.yaml", [*overrides, "val_fold=2"])


def test_evaluate_cli_json_on_shipped_models():
    models = ROOT / "models"
    if not (models / "export_manifest.json").exists():
        pytest.skip("models/ holds no exported bundle yet: run `python -m trainer export` (see README, Models)")
    data = SAMPLE if SAMPLE.exists() else TINY
    done = subprocess.run(
        [sys.executable, "-m", "trainer", "evaluate", "--bundle", str(models), "--data", str(data), "--json",
         "--no-dtw"], cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"top1", "top5", "mrr"} <= set(result)
    assert result["top1"] > 0.5  # real clips of the training sets' signs against the shipped references


def test_evaluate_cli_refuses_missing_data(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainer", "evaluate", "--bundle", str(tmp_path), "--data", "nope.npz", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
