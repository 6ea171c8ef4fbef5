"""DTW between feature sequences: dtaidistance's C implementation by default, fastdtw selectable.

Both backends use the same cost: the Euclidean distance between frames, summed along the
warping path (dtaidistance ``inner_dist="euclidean"``; fastdtw ``dist=2``). They agree exactly
when no constraint binds. The constraint differs, and is documented rather than hidden:
  dtaidistance  ``window`` = Sakoe-Chiba band: |i - j| <= window (exact DTW inside the band)
  fastdtw       ``radius`` = DTW_WINDOW: fastdtw's multi-resolution approximation (its distance
                is >= exact unconstrained DTW, equal when radius >= the sequence length)
Sequences are compared after global normalisation (FeatureStats), so every column counts alike.

`normalised_distance` divides by (len_a + len_b) * sqrt(F): about 0.5-1 for unrelated
z-scored clips, near 0 for a clip and itself, comparable across lengths and feature sizes;
`dtw_score = exp(-normalised / scale)` maps it to (0, 1] to blend with cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SignSeekError

BACKENDS = ("dtaidistance", "fastdtw")


class DTWError(SignSeekError, ValueError):
    """Unknown backend or incompatible sequences."""
    code = "invalid_dtw"


def raw_distance(a: np.ndarray, b: np.ndarray, backend: str = "dtaidistance", window: int | None = None) -> float:
    """Summed Euclidean frame cost along the best warping path between [La, F] and [Lb, F]."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise DTWError(f"DTW needs two [L, F] arrays with the same F, got {a.shape} and {b.shape}")
    if backend == "dtaidistance":
        from dtaidistance import dtw_ndim

        # The band must at least cover the length difference or no path exists.
        band = None if window is None else max(int(window), abs(len(a) - len(b)) + 1)
        return float(dtw_ndim.distance_fast(a, b, window=band, inner_dist="euclidean"))
    if backend == "fastdtw":
        from fastdtw import fastdtw

        radius = max(len(a), len(b)) if window is None else int(window)
        return float(fastdtw(a, b, radius=radius, dist=2)[0])
    raise DTWError(f"unknown DTW backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def normalised_distance(raw: float, len_a: int, len_b: int, n_features: int) -> float:
    return raw / ((len_a + len_b) * np.sqrt(n_features))


def dtw_score(normalised: float | np.ndarray, scale: float = 1.0):
    return np.exp(-np.asarray(normalised) / scale)


def distances(
    query: np.ndarray,
    references: Sequence[np.ndarray],
    backend: str = "dtaidistance",
    window: int | None = None,
) -> np.ndarray:
    """Normalised DTW distance from ``query`` to each reference (all already normalised)."""
    return np.asarray(
        [normalised_distance(raw_distance(query, r, backend, window), len(query), len(r), query.shape[1])
         for r in references],
        dtype=np.float32,
    )


def nearest_labels(
    queries: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    labels: Sequence[str],
    window: int | None = None,
    backend: str = "dtaidistance",
) -> list[list[str]]:
    """Plain DTW nearest-neighbour ranking (the few-shot baseline the encoder must beat).

    ``queries`` and ``references`` are normalised [L, F] arrays; returns each query's labels,
    best first (each label ranked by its nearest reference).
    """
    out = []
    labels = np.asarray(labels, dtype=str)
    for q in queries:
        d = distances(q, references, backend, window)
        order = np.argsort(d, kind="stable")
        out.append(list(dict.fromkeys(labels[order].tolist())))
    return out
