"""SignPredictor, the ASL backend's API, on the fixture bundle."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.bundle_factory import build_fixture_bundle

from signseek import SignPredictor
from signseek.engine import InputError
from signseek.landmarks.layouts import canonical_to_flat


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixture_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def predictor(fx):
    return SignPredictor(fx.directory, _env_file=None)


def hello(fx):
    return next(p for p, y in zip(fx.reference_points, fx.reference_labels, strict=True) if y == "hello")


def test_label_map_and_model_info(predictor, fx):
    labels = predictor.get_label_map()
    assert list(labels) == list(range(len(labels)))
    assert set(labels.values()) == set(fx.reference_labels) - {"-"}
    info = predictor.get_model_info()
    assert info["backend"] == "onnxruntime-cpu" and info["model_name"] == "fixture-masked-mean"
    assert info["settings"]["DEFAULT_TOP_K"] == 5 and "SIM_THRESHOLD" in info["setting_sources"]


def test_single_top_k_and_distribution(predictor, fx):
    assert predictor.predict_single(hello(fx))[0] == "hello"
    top = predictor.predict_top_k(hello(fx), k=3)
    assert len(top) == 3 and top[0][0] == "hello"
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    dist = predictor.predict_distribution(hello(fx))
    assert set(dist) == set(predictor.get_label_map().values())
    assert max(dist, key=dist.get) == "hello" and 0 < sum(dist.values()) <= 1 + 1e-6


def test_no_sign_and_flat_layouts(predictor, fx):
    blank = hello(fx).copy()
    blank[:, 501:] = np.nan
    assert predictor.predict_single(blank) == (None, 0.0)
    for layout in ("canonical", "holistic", "pose_hands"):
        assert predictor.predict_single(canonical_to_flat(hello(fx), layout))[0] == "hello", layout
    with pytest.raises(InputError):
        predictor.predict_single(np.zeros((3, 10)))


def test_batch_equals_singles(predictor, fx):
    batch = fx.queries[:6]
    singles = [predictor.predict_single(p) for p in batch]
    together = predictor.predict_batch(batch)
    assert [x[0] for x in together] == [x[0] for x in singles]
    assert [x[1] for x in together] == pytest.approx([x[1] for x in singles], abs=1e-5)
