"""The ANN index (usearch) against exact search: recall@5 on random unit vectors."""

from __future__ import annotations

import numpy as np
import pytest

from signseek.engine import AnnIndex, ExactIndex, ReferenceSet, build_index


def normalise(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def unit(rng, n, d=256):
    return normalise(rng.standard_normal((n, d)).astype(np.float32))


def clustered(rng, n_signs, n, spread=0.04):
    """n unit vectors around n_signs random centres (clip i belongs to sign i % n_signs), as sign
    embeddings cluster. Uniformly random vectors in 256-d are equidistant from everything: no index
    (and no task) lives there, and HNSW's multi-threaded build then misses neighbours at random."""
    centres = unit(rng, n_signs)
    labels_idx = np.arange(n) % n_signs
    data = normalise(centres[labels_idx] + spread * rng.standard_normal((n, centres.shape[1])).astype(np.float32))
    return centres, labels_idx, data


@pytest.mark.slow
def test_ann_recall_at_5_on_20k_random_unit_vectors():
    # Random unit vectors clustered like sign embeddings (2000 "signs" of 10 clips each).
    rng = np.random.default_rng(0)
    centres, labels_idx, data = clustered(rng, 2000, 20_000)
    labels = [f"s{i}" for i in labels_idx]
    queries = normalise(centres[rng.integers(0, 2000, 200)] + 0.04 * rng.standard_normal((200, 256)).astype(np.float32))
    exact = ExactIndex(data, labels).nearest(queries, 5)
    ann = AnnIndex(data, labels).nearest(queries, 5)
    recall = np.mean([len(set(a) & set(e)) / 5 for a, e in zip(ann, exact, strict=True)])
    assert recall >= 0.99, recall


def test_build_index_switches_at_the_threshold_and_label_hits_agree():
    rng = np.random.default_rng(1)
    _, labels_idx, data = clustered(rng, 300, 3000)
    labels = [f"s{i}" for i in labels_idx]
    refs = ReferenceSet(data, labels)
    assert build_index(refs, ann_threshold=5000).kind == "exact"
    ann = build_index(refs, ann_threshold=1000)
    assert ann.kind == "ann"
    queries = data[:20] + 0.05 * unit(rng, 20)
    for a, e in zip(ann.search(queries, 5), ExactIndex(data, labels).search(queries, 5), strict=True):
        assert a.labels[0] == e.labels[0]
        assert a.similarities[0] == np.float32(e.similarities[0]) or abs(a.similarities[0] - e.similarities[0]) < 1e-5
        assert labels[a.reference_index[0]] == a.labels[0]
