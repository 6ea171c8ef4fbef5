"""TFLite export: inputs prepared as the engine does, and the full export on the fixture bundle.

The converter (litert-torch 0.10 + CPU torch 2.13 + ai-edge-quantizer + ai-edge-litert, pinned in
requirements-tflite.txt) lives in its own venv, `.venv-litert`, made by `make tflite-venv`. CI's
`make test` does not build it (one more torch and jax, 2.3 GB installed, for one test), so the
end-to-end test runs where that venv exists (a developer who ran `make tflite`) and otherwise
skips, saying so. The input preparation and the refusal without a converter run everywhere.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fixtures.bundle_factory import build_fixture_bundle

from signseek.bundle import load_bundle
from trainer import tflite


@pytest.fixture(scope="module")
def fixture_bundle(tmp_path_factory):
    return build_fixture_bundle(tmp_path_factory.mktemp("bundle") / "bundle")


def test_inputs_are_real_clips_prepared_like_the_engine(fixture_bundle, tmp_path):
    bundle = load_bundle(fixture_bundle.directory)
    files = tflite.build_inputs(bundle, tmp_path / "inputs.npz")
    assert files == ["sign_encoder.onnx", "classifier_fingerspelling.onnx"]
    data = np.load(tmp_path / "inputs.npz")
    assert list(data["models"]) == ["encoder", "classifier_fingerspelling"]
    seq_len = bundle.feature_config.seq_len
    features, mask = data["encoder__features"], data["encoder__mask"]
    assert features.shape == (132, seq_len, bundle.feature_config.feature_dim) and mask.shape == (132, seq_len)
    assert np.isfinite(features).all() and set(np.unique(mask)) <= {0.0, 1.0}
    # The first clip, prepared through the engine's public steps, is exactly what the converter gets.
    from signseek.features import prepare_sequence
    from signseek.landmarks.layouts import flat_to_canonical

    first = flat_to_canonical(np.load(tflite.ENCODER_CLIPS)["landmarks"][0])[0]
    expected = bundle.stats.apply(prepare_sequence(first, bundle.feature_config))[:seq_len]
    np.testing.assert_allclose(features[0, : len(expected)], expected, atol=1e-6)
    assert data["encoder__references"].shape == (len(bundle.rows), 256)


def test_refuses_without_the_converter_venv(fixture_bundle, tmp_path, capsys):
    code = tflite.main(["--bundle", str(fixture_bundle.directory), "--python", str(tmp_path / "none" / "python")])
    assert code == 2 and "make tflite-venv" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not tflite.converter_ready(),
                    reason="no converter venv (.venv-litert): `make test` does not build it (litert-torch, torch, "
                           "jax: 2.3 GB installed); run `make tflite-venv` to include this test")
def test_export_on_the_fixture_bundle_verifies_and_ships(fixture_bundle, tmp_path):
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(fixture_bundle.directory, bundle_dir)
    report_path = tmp_path / "report.json"
    assert tflite.main(["--bundle", str(bundle_dir), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["passed"] and [m["model"] for m in report["models"]] == ["encoder", "classifier_fingerspelling"]
    for model in report["models"]:
        assert model["torch_max_abs_diff"] <= 1e-4  # the torch rebuild of the ONNX graph, before converting
        assert model["fp32"]["max_abs_diff"] <= 1e-4
        assert model["int8"]["min_cosine"] >= 0.999 and model["int8"]["top1_agreement"] == 1.0
        assert model["int8"]["bytes"] < model["fp32"]["bytes"]  # int8 weights, not a copy of the fp32 file
    bundle = load_bundle(bundle_dir)  # the manifest lists the new files with their sha256
    for name in ("sign_encoder.tflite", "sign_encoder.int8.tflite", "classifier_fingerspelling.tflite",
                 "classifier_fingerspelling.int8.tflite"):
        assert name in bundle.manifest["files"] and (bundle_dir / name).is_file()
    assert bundle.manifest["tflite"]["converter"]["litert-torch"]
    assert "litert_ms" not in bundle.manifest["tflite"]["checks"][0]["fp32"]  # timings go to BENCHMARKS.md

