"""SignDataset, the file importers (shared NPZ, MP_Data, ISLR parquet, .pose), splits and the CLI.

Inputs are the real sample files (sample_dataset/*.npz, tests/fixtures/holistic_sample.pose) or
files this test writes in the true format (MP_Data .npy trees, an ISLR parquet + train.csv).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signseek.datasets import (
    DatasetError,
    SignDataset,
    export_npz,
    few_shot_episode,
    import_islr,
    import_mpdata,
    import_npz,
    import_pose,
    read_pose_file,
    split_by_group,
    split_by_label,
    stratified_split,
)
from signseek.landmarks import LEFT_HAND, POSE, RIGHT_HAND, canonical_to_flat, flat_to_canonical
from signseek.paths import PROJECT_ROOT, SAMPLE_DATASET

SIGNS = SAMPLE_DATASET / "signs_sample.npz"
FINGERS = SAMPLE_DATASET / "fingerspelling_sample.npz"
POSE_FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "holistic_sample.pose"


@pytest.fixture(scope="module")
def signs() -> SignDataset:
    return import_npz(SIGNS)


# ---- container -----------------------------------------------------------------------------


def test_npz_import_matches_flat_to_canonical(signs):
    with np.load(SIGNS) as raw:
        landmarks, labels, sessions, sequences = raw["landmarks"], raw["label"], raw["session"], raw["sequence"]
    assert len(signs) == len(landmarks) == 132
    assert signs.labels.tolist() == labels.tolist()
    assert signs.signers.tolist() == sessions.tolist()
    assert signs.extra["sequence"].tolist() == sequences.tolist()
    # Only pose + hands stored: 75 points, not 543 (no face in the 258 layout).
    assert signs.landmark_index.tolist() == list(range(33)) + list(range(501, 543))
    assert signs.frames.shape == (132 * 20, 75, 3)
    for i in (0, 57, 131):
        expected, vis = flat_to_canonical(landmarks[i])
        np.testing.assert_array_equal(signs.points(i), expected)
        seq = signs[i]
        np.testing.assert_array_equal(seq.points, expected)
        np.testing.assert_array_equal(seq.visibility, vis)
        assert seq.meta["label"] == labels[i] and seq.meta["signer"] == sessions[i]
        assert np.isnan(seq.face).all()


def test_fingerspelling_import_stores_hands_only():
    ds = import_npz(FINGERS)
    assert len(ds) == 84 and len(ds.label_names) == 28
    assert ds.landmark_index.tolist() == list(range(501, 543))
    assert ds.visibility is None
    pts = ds.points(3)
    assert np.isnan(pts[:, POSE]).all()
    assert np.isfinite(pts[:, RIGHT_HAND]).all(axis=(1, 2)).any()


def test_save_load_round_trip_is_exact(signs, tmp_path):
    signs.extra["note"] = np.asarray([f"n{i}" for i in range(len(signs))])
    path = signs.save(tmp_path / "ds")  # suffix added
    assert path.suffix == ".npz"
    back = SignDataset.load(path)
    for name in ("frames", "offsets", "landmark_index", "labels", "signers", "sources", "ids", "visibility"):
        np.testing.assert_array_equal(getattr(back, name), getattr(signs, name), err_msg=name)
    np.testing.assert_array_equal(back.fps, signs.fps)
    assert set(back.extra) == {"sequence", "note"}
    np.testing.assert_array_equal(back.extra["note"], signs.extra["note"])
    np.testing.assert_array_equal(back.points(17), signs.points(17))
    del signs.extra["note"]


def test_variable_lengths_str_signers_subset_and_concatenate(tmp_path):
    rng = np.random.default_rng(0)
    clips = []
    for n in (3, 7, 1):
        pts = np.full((n, 543, 3), np.nan, np.float32)
        pts[:, LEFT_HAND] = rng.random((n, 21, 3))
        clips.append(pts)
    ds = SignDataset.from_sequences(clips, ["x", "y", "x"], signers=["ann", "bo", "ann"], source="t", fps=25)
    assert ds.lengths.tolist() == [3, 7, 1]
    assert ds.landmark_index.tolist() == list(range(501, 522))
    assert ds.signers.dtype.kind == "U"
    back = SignDataset.load(ds.save(tmp_path / "v.npz"))
    assert back.signers.tolist() == ["ann", "bo", "ann"] and back[1].fps == 25.0
    for i, clip in enumerate(clips):
        np.testing.assert_array_equal(back.points(i), clip)
    sub = ds.subset([2, 0])
    assert sub.labels.tolist() == ["x", "x"] and sub.lengths.tolist() == [1, 3]
    np.testing.assert_array_equal(sub.points(1), clips[0])
    both = SignDataset.concatenate([ds, import_npz(FINGERS).subset([0, 1])])
    assert len(both) == 5 and both.lengths.tolist() == [3, 7, 1, 20, 20]
    np.testing.assert_array_equal(both.points(1), clips[1])


def test_summary_counts(signs):
    summary = signs.summary()
    assert summary["clips"] == 132 and summary["labels"] == 33
    assert summary["per_label"]["hello"] == 4
    assert sum(summary["per_signer"].values()) == 132
    assert summary["part_frames"]["face"] == 0
    assert 0 < summary["part_frames"]["left_hand"] < summary["part_frames"]["right_hand"] <= 2640


def test_export_npz_round_trips_to_the_shared_layout(signs, tmp_path):
    out = export_npz(signs.subset(range(10)), tmp_path / "s.npz", layout="pose_hands")
    with np.load(out) as back, np.load(SIGNS) as raw:
        np.testing.assert_allclose(back["landmarks"], raw["landmarks"][:10])
        assert back["label"].tolist() == raw["label"][:10].tolist()
        assert back["session"].tolist() == raw["session"][:10].tolist()


def test_load_refuses_non_dataset_and_newer_version(tmp_path):
    with pytest.raises(DatasetError, match="import it first"):
        SignDataset.load(SIGNS)
    ds = SignDataset.from_sequences([np.zeros((2, 543, 3), np.float32)], ["a"])
    path = ds.save(tmp_path / "d.npz")
    arrays = dict(np.load(path))
    arrays["format_version"] = np.asarray(99)
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match="version 99"):
        SignDataset.load(path)


# ---- MP_Data, ISLR, .pose ------------------------------------------------------------------


@pytest.mark.parametrize("layout, size", [("holistic", 1662), ("pose_hands", 258),
                                          ("upper_hands", 170), ("hands", 126)])
def test_mpdata_each_frame_length(tmp_path, layout, size):
    with np.load(SIGNS) as raw:
        source = raw["landmarks"][:4]  # real frames, re-laid out in each MP_Data length
    root = tmp_path / "MP_Data"
    expected = {}
    for s, label in enumerate(["hello", "hello", "thanks", "thanks"]):
        points, vis = flat_to_canonical(source[s])
        flat = canonical_to_flat(points, layout, vis)
        seq_dir = root / label / str(s)
        seq_dir.mkdir(parents=True)
        for f in range(12):  # 12 frames: "10" and "11" must sort after "9"
            np.save(seq_dir / f"{f}.npy", flat[f])
        expected[f"{label}/{s}"] = flat_to_canonical(flat[:12], layout)[0]
    ds = import_mpdata(root)
    assert len(ds) == 4 and ds.label_names == ["hello", "thanks"]
    assert ds.lengths.tolist() == [12] * 4
    for i, clip_id in enumerate(ds.ids):
        np.testing.assert_array_equal(ds.points(i), expected[clip_id])


def test_mpdata_errors(tmp_path):
    with pytest.raises(DatasetError, match="no MP_Data folder"):
        import_mpdata(tmp_path / "missing")
    (tmp_path / "a" / "0").mkdir(parents=True)
    np.save(tmp_path / "a" / "0" / "0.npy", np.zeros(100, np.float32))
    with pytest.raises(DatasetError, match="100 values"):
        import_mpdata(tmp_path)


def _write_islr_parquet(path: Path, points: np.ndarray) -> None:
    # ISLR row order: per frame, face 468, left_hand 21, pose 33, right_hand 21.
    rows = []
    blocks = [("face", 33, 468), ("left_hand", 501, 21), ("pose", 0, 33), ("right_hand", 522, 21)]
    for t in range(len(points)):
        for kind, start, count in blocks:
            for k in range(count):
                x, y, z = points[t, start + k]
                rows.append((t + 20, f"{t + 20}-{kind}-{k}", kind, k, x, y, z))
    frame = pd.DataFrame(rows, columns=["frame", "row_id", "type", "landmark_index", "x", "y", "z"])
    frame.to_parquet(path, engine="pyarrow")


def test_islr_parquet_and_train_csv(tmp_path):
    with np.load(SIGNS) as raw:
        clips = [flat_to_canonical(raw["landmarks"][i][:6])[0] for i in (0, 40)]
    clips[1][:, 33:501] = np.random.default_rng(1).random((6, 468, 3))  # a face, as ISLR has
    (tmp_path / "train_landmark_files" / "16069").mkdir(parents=True)
    table = []
    for i, clip in enumerate(clips):
        rel = f"train_landmark_files/16069/{1000 + i}.parquet"
        _write_islr_parquet(tmp_path / rel, clip)
        table.append({"path": rel, "participant_id": 16069 + i, "sequence_id": 1000 + i, "sign": ["tv", "go"][i]})
    pd.DataFrame(table).to_csv(tmp_path / "train.csv", index=False)
    ds = import_islr(tmp_path)
    assert ds.labels.tolist() == ["tv", "go"] and ds.signers.tolist() == [16069, 16070]
    assert ds.ids.tolist() == ["1000", "1001"]
    for i, clip in enumerate(clips):
        np.testing.assert_array_equal(ds.points(i), clip)
    assert ds.summary()["part_frames"]["face"] == 6


def test_pose_file_real_sample():
    seq = read_pose_file(POSE_FIXTURE)
    assert len(seq) == 5 and seq.fps == 25.0
    assert seq.detection_counts() == {"pose": 5, "face": 5, "left_hand": 5, "right_hand": 5, "any_hand": 5}
    # Pixels / (640 x 360) -> MediaPipe's normalised coordinates: face and hands about the frame
    # (MediaPipe places points a little past an edge when a part is cut off by it).
    for part in ("face", "left_hand", "right_hand"):
        xy = getattr(seq, part)[..., :2]
        assert xy.min() >= -0.1 and xy.max() <= 1.1 and 0.2 < xy.mean() < 0.8, part
    from pose_format import Pose

    pose = Pose.read(POSE_FIXTURE.read_bytes())
    raw = np.asarray(pose.body.data.data[0, 0])
    np.testing.assert_allclose(seq.points[0, 0], raw[0] / [640, 360, 1], rtol=1e-6)  # nose
    np.testing.assert_allclose(seq.points[0, 33:501], raw[33:501] / [640, 360, 1], rtol=1e-6)  # face 478 -> 468
    np.testing.assert_allclose(seq.visibility[0], pose.body.confidence[0, 0, :33], rtol=1e-6)


def test_pose_masked_points_become_nan(tmp_path):
    from pose_format import Pose

    pose = Pose.read(POSE_FIXTURE.read_bytes())
    left = slice(33 + 478, 33 + 478 + 21)
    pose.body.confidence[2, 0, left] = 0  # left hand not detected in frame 2
    pose.body.data[2, 0, left] = np.ma.masked
    path = tmp_path / "masked.pose"
    with open(path, "wb") as f:
        pose.write(f)
    ds = import_pose(path, label="hi")
    seq = ds[0]
    assert seq.detected("left_hand").tolist() == [True, True, False, True, True]
    assert seq.detected("right_hand").all() and ds.labels.tolist() == ["hi"]


# ---- splits -------------------------------------------------------------------------------


def test_group_split_is_disjoint_and_deterministic(signs):
    split = split_by_group(signs, test_size=0.2, val_size=0.1, seed=3)
    parts = [set(signs.signers[idx].tolist()) for idx in (split.train, split.val, split.test)]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(len(signs)))
    assert len(split.test) >= 0.2 * len(signs)
    again = split_by_group(signs, test_size=0.2, val_size=0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(split.as_dict().values(), again.as_dict().values(), strict=True))
    other = split_by_group(signs, test_size=0.2, val_size=0.1, seed=4)
    assert not np.array_equal(other.test, split.test)


def test_label_split_holds_out_whole_labels(signs):
    split = split_by_label(signs, holdout_fraction=0.25, seed=0, val_size=0.25)
    held = set(split.held_out_labels)
    assert len(held) == round(0.25 * 33)
    assert set(signs.labels[split.test].tolist()) == held
    assert not held & set(signs.labels[split.train].tolist()) and not held & set(signs.labels[split.val].tolist())
    assert split_by_label(signs, 0.25, seed=0).held_out_labels == split.held_out_labels
    assert split_by_label(signs, 0.25, seed=1).held_out_labels != split.held_out_labels


def test_stratified_split_and_few_shot_episode(signs):
    split = stratified_split(signs, test_size=0.25, seed=0)
    assert not set(split.train.tolist()) & set(split.test.tolist())
    for label in signs.label_names:  # 4 per label -> 1 test, 3 train
        assert (signs.labels[split.test] == label).sum() == 1
    episode = few_shot_episode(signs, shots=3, seed=5)
    ref_labels = signs.labels[episode.references]
    assert all((ref_labels == label).sum() == 3 for label in signs.label_names)
    assert len(episode.queries) == 33 and not set(episode.references.tolist()) & set(episode.queries.tolist())
    assert np.array_equal(few_shot_episode(signs, shots=3, seed=5).references, episode.references)
    with pytest.raises(DatasetError, match="no label has more than 4"):
        few_shot_episode(signs, shots=4)


# ---- CLI ----------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "signseek.datasets", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_cli_help_for_each_subcommand():
    out = _cli("--help")
    assert out.returncode == 0 and all(c in out.stdout for c in ("download", "import", "inspect", "split"))
    for command, option in (("download", "--dry-run"), ("import", "--format"), ("inspect", "--json"),
                            ("split", "--by")):
        out = _cli(command, "--help")
        assert out.returncode == 0 and option in out.stdout, command


@pytest.mark.parametrize("args", [
    ["inspect", "no/such/file.npz"],
    ["import", "no/such/dir", "--format", "mpdata", "--out", "x.npz"],
    ["import", "sample_dataset/README.md", "--format", "npz", "--out", "x.npz"],
    ["download", "no/such/manifest.json", "--out", "v"],
    ["import", "sample_dataset", "--format", "bogus", "--out", "x.npz"],
])
def test_cli_bad_input_one_line_exit_2(args, tmp_path):
    out = _cli(*[a if a != "x.npz" else str(tmp_path / a) for a in args])
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_cli_import_inspect_split(tmp_path):
    out = _cli("import", str(SIGNS), "--format", "npz", "--out", str(tmp_path / "signs.npz"))
    assert out.returncode == 0, out.stderr
    out = _cli("inspect", str(tmp_path / "signs.npz"), "--json")
    summary = __import__("json").loads(out.stdout)
    assert summary["clips"] == 132 and summary["per_label"]["coffee"] == 4
    out = _cli("inspect", str(FINGERS))  # the shared layout is read directly too
    assert out.returncode == 0 and "left_hand" in out.stdout and "per label (28)" in out.stdout
    out = _cli("split", str(tmp_path / "signs.npz"), "--by", "session", "--test", "0.25", "--out",
               str(tmp_path / "split"))
    assert out.returncode == 0, out.stderr
    train, test = (SignDataset.load(tmp_path / "split" / f"{s}.npz") for s in ("train", "test"))
    assert len(train) + len(test) == 132
    assert not set(train.signers.tolist()) & set(test.signers.tolist())


def test_validation_label_folds_are_disjoint_cover_every_label_and_start_with_the_studys_own():
    from signseek.datasets.splits import held_out_labels, validation_label_folds

    names = ["-", "a", "b", "c", "d", "e", "f", "g", "hello", "tea", "coffee", "water", "small", "large"]
    labels = np.repeat(names, 3)
    folds = validation_label_folds(labels, 0.25, 1, 4)
    assert folds[0] == held_out_labels(labels, 0.25, 1, by_category=True)  # the study's own validation labels
    flat = [x for f in folds for x in f]
    assert len(flat) == len(set(flat)) and set(flat) == set(names) - {"-"}  # disjoint, every non-idle label once
    assert all(any(len(x) == 1 for x in f) and any(len(x) > 1 for x in f) for f in folds)  # letters and words
    assert validation_label_folds(labels, 0.25, 1, 4) == folds and validation_label_folds(labels, 0.25, 1, 1) == [folds[0]]
