"""trainer.models / augment / losses: shapes, masking, finiteness, the hand-shape descriptor (torch on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from signseek.features import FeatureConfig, FeatureStats, mirror_features
from trainer.augment import affine, augment, frame_drop, hand_dropout, jitter, random_affine, time_warp
from trainer.config import ConfigError, TrainConfig, load_config
from trainer.losses import nt_xent, supcon
from trainer.models import (
    HandShapeDescriptor,
    HybridEncoder,
    SignEncoder,
    build_classifier,
    reverse_within_length,
)

FCFG = FeatureConfig()


def _features(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(batch, length, FCFG.feature_dim)).astype(np.float32))


def _padded(x: torch.Tensor, extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    pad = torch.randn(x.shape[0], extra, x.shape[2]) * 5  # loud padding: it must not leak in
    mask = torch.cat([torch.ones(x.shape[:2]), torch.zeros(x.shape[0], extra)], dim=1)
    return torch.cat([x, pad], dim=1), mask


def test_encoder_shape_and_unit_norm():
    model = SignEncoder(FCFG.feature_dim, FCFG.motion_column).eval()
    out = model(_features(3, 32), torch.ones(3, 32))
    assert out.shape == (3, 256)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_padding_does_not_change_the_embedding():
    model = SignEncoder(FCFG.feature_dim, FCFG.motion_column).eval()
    x = _features(2, 20)
    with torch.no_grad():
        plain = model(x, torch.ones(2, 20))
        padded = model(*_padded(x, 11))
    assert torch.allclose(plain, padded, atol=1e-5)


def test_mixed_lengths_in_one_batch_match_single_runs():
    model = SignEncoder(FCFG.feature_dim, FCFG.motion_column).eval()
    short, long = _features(1, 9, 1), _features(1, 30, 2)
    batch = torch.zeros(2, 30, FCFG.feature_dim)
    batch[0, :9], batch[1] = short[0], long[0]
    mask = torch.zeros(2, 30)
    mask[0, :9], mask[1] = 1, 1
    with torch.no_grad():
        together = model(batch, mask)
        alone = torch.cat([model(short, torch.ones(1, 9)), model(long, torch.ones(1, 30))])
    assert torch.allclose(together, alone, atol=1e-5)


def test_reverse_within_length_is_its_own_inverse():
    x = torch.arange(12, dtype=torch.float32).reshape(2, 6, 1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    rev = reverse_within_length(x, mask)
    assert rev[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5]
    assert torch.equal(reverse_within_length(rev, mask), x)


@pytest.mark.parametrize("kind", ["mlp", "lstm", "bilstm", "tcn", "gru"])
def test_classifiers_shape_and_masking(kind):
    model = build_classifier(kind, FCFG.feature_dim, 7, hidden=32).eval()
    x = _features(2, 16)
    with torch.no_grad():
        logits = model(x, torch.ones(2, 16))
        padded = model(*_padded(x, 5))
    assert logits.shape == (2, 7)
    assert torch.allclose(logits, padded, atol=1e-5)


def _clip(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, FCFG.feature_dim)).astype(np.float32)
    x[:, FCFG.blocks["presence"]] = 1.0
    return x


def test_augment_keeps_shape_and_is_finite():
    cfg = TrainConfig(aug_mirror=1.0, aug_hand_dropout=1.0)
    rng = np.random.default_rng(0)
    for seed in range(20):
        out = augment(_clip(seed), FCFG, cfg, rng)
        assert out.shape == (32, FCFG.feature_dim)
        assert np.isfinite(out).all()
        assert set(np.unique(out[:, FCFG.blocks["presence"]])) <= {0.0, 1.0}


def test_each_transform_keeps_shape():
    rng = np.random.default_rng(1)
    x = _clip()
    for out in (time_warp(x, FCFG, rng, 0.3), frame_drop(x, FCFG, rng, 0.3), hand_dropout(x, FCFG, rng),
                jitter(x, FCFG, rng, 0.01), affine(x, FCFG, random_affine(rng, 15, 0.1, 0.1))):
        assert out.shape == x.shape and np.isfinite(out).all()


def test_hand_dropout_clears_a_hand():
    out = hand_dropout(_clip(), FCFG, np.random.default_rng(3))
    assert (out[:, FCFG.blocks["presence"]] == 0).any()


def test_identity_affine_and_double_mirror_change_nothing():
    x = _clip()
    assert np.allclose(affine(x, FCFG, np.eye(2, dtype=np.float32)), x, atol=1e-6)
    assert np.allclose(mirror_features(mirror_features(x, FCFG), FCFG), x)


def test_losses_prefer_matching_views():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(16, 32), dim=1)
    other = torch.nn.functional.normalize(torch.randn(16, 32), dim=1)
    assert nt_xent(z, z) < nt_xent(z, other)
    labels = torch.arange(8).repeat(2)
    assert supcon(torch.cat([z[:8], z[:8]]), labels) < supcon(torch.cat([z[:8], other[:8]]), labels)


def test_config_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlr: 0.01\n")
    cfg = load_config(path, ["epochs=5", "features.hands_only=true", "aug_mirror=0"])
    assert (cfg.epochs, cfg.lr, cfg.aug_mirror) == (5, 0.01, 0)
    assert cfg.feature_config().hands_only
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(path, ["epoch=5"])
    with pytest.raises(ConfigError, match="unknown feature key"):
        load_config(path, ["features.nope=1"])


@pytest.fixture(scope="module")
def fitted():
    """Real clips of signs.npz, their stats, and a descriptor fitted on them."""
    from pathlib import Path

    from trainer.data import load_clips

    clips = load_clips(Path(__file__).resolve().parent / "fixtures" / "trainer_signs_tiny.npz", FCFG)
    stats = FeatureStats.fit(clips.features)
    descriptor = HandShapeDescriptor(FCFG)
    descriptor.fit(stats, [stats.apply(f) for f in clips.features])
    return clips, stats, descriptor


def test_hand_descriptor_ignores_turning_and_sizing_the_hand_but_not_its_shape(fitted):
    clips, stats, descriptor = fitted
    angle = np.deg2rad(25.0)
    turn = 1.3 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def describe(raw: np.ndarray) -> np.ndarray:
        return descriptor(torch.from_numpy(stats.apply(raw)).unsqueeze(0))[0].numpy()

    clip = clips.features[0]
    same = describe(affine(clip, FCFG, turn))  # rotated and scaled in the image plane
    assert np.abs(same - describe(clip)).max() < 1e-3
    other = next(f for f, label in zip(clips.features, clips.labels, strict=True) if label != clips.labels[0])
    assert np.abs(describe(other) - describe(clip)).mean() > 0.1  # another sign's hands differ
    assert descriptor.basis.shape == (descriptor.dim, 256)


def test_hybrid_views_give_unit_embeddings(fitted):
    clips, stats, descriptor = fitted
    encoder = SignEncoder(FCFG.feature_dim, FCFG.motion_column, hidden=32, descriptor=descriptor).eval()
    x = torch.from_numpy(np.stack([stats.apply(f) for f in clips.features[:3]]))
    mask = torch.ones(x.shape[:2])
    for view in ("features", "handshape"):
        out = HybridEncoder(encoder, FCFG.feature_dim, 1.0, view=view)(x, mask)
        assert out.shape == (3, 256) and torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="hand_descriptor"):
        HybridEncoder(SignEncoder(FCFG.feature_dim, FCFG.motion_column, hidden=32), FCFG.feature_dim, 1.0,
                      view="handshape")
