"""Bundle loading verifies the manifest; writing, zipping and exporting references round-trip."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from fixtures.bundle_factory import build_fixture_bundle

from signseek.bundle import BundleError, export_references, load_bundle, write_manifest


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixture_bundle(tmp_path_factory.mktemp("bundle"))


def test_load_bundle_reads_every_part(fx):
    bundle = load_bundle(fx.directory)
    assert bundle.embeddings.shape == (len(fx.reference_labels), 256)
    assert bundle.labels == fx.reference_labels
    assert len(bundle.reference_features) == len(bundle.rows)
    assert bundle.reference_features[0].shape[1] == bundle.feature_config.feature_dim
    assert set(bundle.prototype_labels) == set(fx.reference_labels)
    assert "fingerspelling" in bundle.classifiers and bundle.classifiers["fingerspelling"].feature_config.hands_only
    assert bundle.idle_labels == ["-"]


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name", ["embeddings.npy", "sign_encoder.onnx", "global_stats.npz", "embeddings_map.csv"])
def test_a_flipped_byte_is_refused_naming_the_file(fx, tmp_path, name):
    target = _copy(fx.directory, tmp_path / "b")
    path = target / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=name.replace(".", r"\.")) as info:
        load_bundle(target)
    assert "sha256" in str(info.value)


def test_a_missing_file_is_refused_naming_the_file(fx, tmp_path):
    target = _copy(fx.directory, tmp_path / "b")
    (target / "reference_features.npz").unlink()
    with pytest.raises(BundleError, match=r"reference_features\.npz .*missing"):
        load_bundle(target)


def test_no_manifest_is_refused(fx, tmp_path):
    target = _copy(fx.directory, tmp_path / "b")
    (target / "export_manifest.json").unlink()
    with pytest.raises(BundleError, match="export_manifest.json"):
        load_bundle(target)


def test_manifest_and_zip_list_every_file(fx):
    manifest = json.loads((fx.directory / "export_manifest.json").read_text())
    on_disk = {p.name for p in fx.directory.iterdir()} - {"export_manifest.json", "sign_encoder_bundle.zip"}
    assert set(manifest["files"]) == on_disk
    with zipfile.ZipFile(fx.directory / "sign_encoder_bundle.zip") as zf:
        assert set(zf.namelist()) == on_disk | {"export_manifest.json"}


def test_write_manifest_of_explicit_files(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.txt").write_text("y")
    manifest = write_manifest(tmp_path, {"n_sequences": 1}, {"top1": 0.5}, "cmd", files=["a.txt"])
    assert list(manifest["files"]) == ["a.txt"]
    assert manifest["metrics"] == {"top1": 0.5} and manifest["command"] == "cmd"


def test_export_references_writes_a_loadable_bundle(fx, tmp_path):
    src = load_bundle(fx.directory)
    extra = np.eye(1, 256, dtype=np.float32)
    emb = np.concatenate([src.embeddings, extra])
    rows = [*({"label": r["label"], "category": r["category"]} for r in src.rows), {"label": "akwaaba", "category": "word"}]
    feats = [*src.reference_features, src.reference_features[0]]
    out = export_references(src, tmp_path / "exported", emb, rows, feats)
    loaded = load_bundle(out)
    assert loaded.labels[-1] == "akwaaba" and len(loaded.labels) == len(src.labels) + 1
    assert loaded.config["categories"]["akwaaba"] == "word"
    assert "akwaaba" in loaded.prototype_labels
    assert (out / "sign_encoder_bundle.zip").is_file()
    np.testing.assert_allclose(loaded.reference_features[-1], src.reference_features[0])
    with pytest.raises(BundleError, match="must differ"):
        export_references(src, fx.directory, emb, rows, feats)
