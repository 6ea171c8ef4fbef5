"""Train / validation / test splits and few-shot episodes, deterministic for a seed.

- ``split_by_group``: no signer or session on both sides (what measures a new signer/sitting;
  random splits leak the signer and the lighting).
- ``split_by_label``: class-disjoint, for few-shot: a fraction of labels is held out whole.
- ``stratified_split``: random within each label, every label on every side it can be.
- ``few_shot_episode``: K references per label, the rest queries.

Each takes a SignDataset or the plain per-clip arrays, and returns index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .container import SignDataset
from .errors import DatasetError


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    held_out_labels: list[str] = field(default_factory=list)  # split_by_label only

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


@dataclass
class Episode:
    references: np.ndarray  # K indices per label
    queries: np.ndarray  # the other indices of those labels
    labels: list[str]  # the labels in the episode
    skipped_labels: list[str]  # labels with too few clips for K references and one query


def _values(data, attr: str) -> np.ndarray:
    if isinstance(data, SignDataset):
        return np.asarray(getattr(data, attr))
    return np.asarray(data)


def _check_fractions(test_size: float, val_size: float) -> None:
    if not (0 <= test_size < 1 and 0 <= val_size < 1 and test_size + val_size < 1):
        raise DatasetError(f"test ({test_size}) and val ({val_size}) fractions must be in [0, 1) and sum below 1")


def _sorted_unique(values: np.ndarray) -> list:
    # sorted by string so int and str ids sort alike and the seed alone decides the shuffle
    return sorted(set(values.tolist()), key=str)


def split_by_group(
    data: SignDataset | np.ndarray, test_size: float = 0.2, val_size: float = 0.0, seed: int = 0,
    attr: str = "signers",
) -> Split:
    """Group-disjoint split: whole groups (signers / sessions) go to test, val or train.

    Groups are shuffled with ``seed`` and taken for test, then val, until each side holds at
    least its fraction of the clips; at least one group stays in train.
    """
    _check_fractions(test_size, val_size)
    groups = _values(data, attr)
    unique = _sorted_unique(groups)
    if len(unique) < 2 + (val_size > 0):
        raise DatasetError(f"a group split needs more groups than sides; there are {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    sizes = {g: int(np.sum(groups == g)) for g in unique}
    total = len(groups)
    assignment: dict = {}
    cursor = 0
    for side, fraction in (("test", test_size), ("val", val_size)):
        taken = 0
        while fraction > 0 and taken < fraction * total and cursor < len(unique) - 1:
            group = unique[order[cursor]]
            assignment[group] = side
            taken += sizes[group]
            cursor += 1
    side_of = np.asarray([assignment.get(g, "train") for g in groups.tolist()])
    return Split(*(np.flatnonzero(side_of == s) for s in ("train", "val", "test")))


def split_by_label(
    data: SignDataset | np.ndarray, holdout_fraction: float = 0.25, seed: int = 0, val_size: float = 0.0
) -> Split:
    """Class-disjoint split for few-shot work: ``holdout_fraction`` of the labels (at least one)
    go whole to test; the rest are train (and, with ``val_size``, a stratified val share)."""
    labels = _values(data, "labels").astype(str)
    names = sorted(set(labels.tolist()))
    if not 0 < holdout_fraction < 1 or len(names) < 2:
        raise DatasetError(f"need 0 < holdout_fraction < 1 and at least 2 labels (have {len(names)})")
    n_out = min(max(1, round(holdout_fraction * len(names))), len(names) - 1)
    rng = np.random.default_rng(seed)
    held = sorted(np.asarray(names)[rng.permutation(len(names))[:n_out]].tolist())
    test = np.flatnonzero(np.isin(labels, held))
    seen = np.flatnonzero(~np.isin(labels, held))
    val = np.zeros(0, np.int64)
    if val_size > 0:
        inner = stratified_split(labels[seen], test_size=val_size, seed=seed)
        seen, val = seen[inner.train], seen[inner.test]
    return Split(seen, val, test, held)


def stratified_split(
    data: SignDataset | np.ndarray, test_size: float = 0.2, val_size: float = 0.0, seed: int = 0
) -> Split:
    """Random split within each label: each side gets about its fraction of every label
    (a label with one clip stays in train)."""
    _check_fractions(test_size, val_size)
    labels = _values(data, "labels").astype(str)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for name in sorted(set(labels.tolist())):
        idx = rng.permutation(np.flatnonzero(labels == name))
        n = len(idx)
        n_test = min(int(round(test_size * n)), n - 1)
        n_val = min(int(round(val_size * n)), n - 1 - n_test)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return Split(*(np.sort(np.concatenate(parts[s])).astype(np.int64) for s in ("train", "val", "test")))


def few_shot_episode(
    data: SignDataset | np.ndarray, shots: int = 5, seed: int = 0, max_queries_per_label: int | None = None
) -> Episode:
    """K (``shots``) reference clips per label, drawn with ``seed``; the rest are queries.

    Labels with fewer than shots + 1 clips are left out and listed in ``skipped_labels``.
    """
    if shots < 1:
        raise DatasetError(f"shots must be at least 1, got {shots}")
    labels = _values(data, "labels").astype(str)
    rng = np.random.default_rng(seed)
    refs, queries, used, skipped = [], [], [], []
    for name in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == name)
        if len(idx) <= shots:
            skipped.append(name)
            continue
        idx = rng.permutation(idx)
        refs.append(idx[:shots])
        queries.append(idx[shots:][:max_queries_per_label])
        used.append(name)
    if not used:
        raise DatasetError(f"no label has more than {shots} clips; lower --shots")
    return Episode(np.sort(np.concatenate(refs)), np.sort(np.concatenate(queries)), used, skipped)


def make_split(
    data: SignDataset, by: str, test_size: float = 0.2, val_size: float = 0.0, seed: int = 0
) -> Split:
    """Dispatch for the CLI: ``by`` is session / signer (same thing here), label or stratified."""
    if by in ("session", "signer"):
        return split_by_group(data, test_size, val_size, seed)
    if by == "label":
        return split_by_label(data, test_size, seed, val_size)
    if by == "stratified":
        return stratified_split(data, test_size, val_size, seed)
    raise DatasetError(f"unknown split {by!r}; use session, signer, label or stratified")
