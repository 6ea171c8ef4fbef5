"""Train / validation / test splits and few-shot episodes, deterministic for a seed.

- ``split_by_group``: no signer or session on both sides (what measures a new signer/sitting;
  random splits leak the signer and the lighting).
- ``split_by_last_session``: per label, its last recording session is test and the one before
  it validation (the trainer's split: every label is tested on a sitting it was not trained on).
- ``held_out_labels`` / ``split_by_label``: class-disjoint, for few-shot: labels held out whole;
  ``validation_label_folds``: disjoint validation label sets for cross-fitting the decision rule.
- ``stratified_split``: random within each label, every label on every side it can be.
- ``few_shot_episode``: K references per label, the rest queries.

Each takes a SignDataset or the plain per-clip arrays, and returns index arrays. The trainer, the
evaluation protocols, the explorer and the `signseek-data split` command all call these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..labels import IDLE_LABELS, category_of
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
    held = held_out_labels(labels, holdout_fraction, seed, skip_idle=False)[: len(names) - 1]
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
        picked = rng.choice(idx, size=shots, replace=False)
        refs.append(picked)
        queries.append(np.setdiff1d(idx, picked)[:max_queries_per_label])
        used.append(name)
    if not used:
        raise DatasetError(f"no label has more than {shots} clips; lower --shots")
    return Episode(np.sort(np.concatenate(refs)), np.sort(np.concatenate(queries)), used, skipped)


def split_by_last_session(labels, sessions) -> Split:
    """Whole recording sessions held out per label: for a label recorded in >= 3 sessions, its
    last session is test and the one before it validation; with 2 sessions the last is test; a
    label recorded in one sitting stays in train (it has no unseen sitting to test on)."""
    labels, sessions = np.asarray(labels).astype(str), np.asarray(sessions)
    role = np.zeros(len(labels), dtype=np.int8)  # 0 train, 1 val, 2 test
    for label in np.unique(labels):
        rows = labels == label
        held = sorted(set(sessions[rows].tolist()))
        if len(held) >= 2:
            role[rows & (sessions == held[-1])] = 2
        if len(held) >= 3:
            role[rows & (sessions == held[-2])] = 1
    return Split(*(np.flatnonzero(role == code) for code in range(3)))


def split_by_session(labels, sessions, test_session) -> Split:
    """One whole session held out for every label (test); then, per label, the last remaining
    session is validation when the label has two or more left. What a new sitting of every sign
    looks like (with a signer column, pass signers as ``sessions``)."""
    labels, sessions = np.asarray(labels).astype(str), np.asarray(sessions)
    if not (sessions == test_session).any():
        raise DatasetError(f"no clip is in session {test_session!r}; sessions are {sorted(set(sessions.tolist()))}")
    role = np.where(sessions == test_session, 2, 0).astype(np.int8)
    for label in np.unique(labels):
        rows = (labels == label) & (role == 0)
        left = sorted(set(sessions[rows].tolist()))
        if len(left) >= 2:
            role[rows & (sessions == left[-1])] = 1
    return Split(*(np.flatnonzero(role == code) for code in range(3)))


def held_out_labels(labels, fraction: float, seed: int, by_category: bool = False,
                    skip_idle: bool = True) -> list[str]:
    """A seeded ``fraction`` of the labels (idle ones never), kept out of training for few-shot work.

    ``by_category``: the fraction is taken within each category (letters, words), at least one of
    each, so a small validation set holds both kinds of sign a team will enrol.
    """
    if fraction <= 0:
        return []
    names = sorted(set(np.asarray(labels).astype(str).tolist()) - (set(IDLE_LABELS) if skip_idle else set()))
    groups = ([sorted(n for n in names if category_of(n) == c) for c in ("letter", "word")]
              if by_category else [names])
    rng = np.random.default_rng(seed)
    picked = []
    for group in groups:
        if group:
            count = max(1, int(round(fraction * len(group))))
            picked.extend(rng.choice(group, size=count, replace=False).tolist())
    return sorted(picked)


def validation_label_folds(labels, fraction: float, seed: int, n_folds: int) -> list[list[str]]:
    """Disjoint sets of few-shot validation labels for cross-fitting the decision rule.

    Fold 0 is ``held_out_labels(labels, fraction, seed, by_category=True)``, the study's own
    validation labels; the other non-idle labels are shuffled (seeded) within each category and
    dealt round-robin into folds 1..n_folds-1, so every fold holds letters and words. An encoder
    trained without fold f's labels scores them as unknown signs: pooled over the folds, the
    rule is fitted on every label the study may train on instead of a handful.
    """
    first = held_out_labels(labels, fraction, seed, by_category=True)
    folds: list[list[str]] = [first] + [[] for _ in range(max(0, n_folds - 1))]
    if n_folds <= 1:
        return folds
    rest = sorted(set(np.asarray(labels).astype(str).tolist()) - set(IDLE_LABELS) - set(first))
    rng = np.random.default_rng(seed)
    dealt = 0
    for name in ("letter", "word"):
        group = [n for n in rest if category_of(n) == name]
        for label in rng.permutation(group).tolist():
            folds[1 + dealt % (n_folds - 1)].append(label)
            dealt += 1
    return [sorted(f) for f in folds]


def split_by_mode(labels, sessions, mode: str = "last_session") -> dict[str, np.ndarray]:
    """The trainer's split by name: "last_session", "session:N" or "none" (everything train)."""
    if mode == "none":
        return {"train": np.arange(len(labels)), "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}
    if mode.startswith("session:"):
        try:
            held = int(mode.split(":", 1)[1])
        except ValueError:
            raise DatasetError(f"split {mode!r}: the session must be a number, e.g. session:2") from None
        return split_by_session(labels, sessions, held).as_dict()
    if mode != "last_session":
        raise DatasetError(f"unknown split {mode!r}; use last_session, session:N or none")
    return split_by_last_session(labels, sessions).as_dict()


def pick_references(
    labels: np.ndarray, sessions: np.ndarray, split_mode: str, which: str, per_label: int = 0
) -> np.ndarray:
    """Rows of the training file that become references: the chosen sessions, and at most
    `per_label` clips a label (0 = all), taken round-robin over its sessions and evenly within
    each, so every sitting is represented. The cap keeps the shipped bundle a few MB."""
    split = split_by_mode(labels, sessions, split_mode)
    if which == "all":
        rows = np.arange(len(labels))
    elif which == "train":
        rows = split["train"]
    else:
        rows = np.sort(np.concatenate([split["train"], split["val"]]))
    if per_label <= 0:
        return rows
    keep = []
    for label in sorted(set(labels[rows].tolist())):
        mine = rows[labels[rows] == label]
        by_session = [mine[sessions[mine] == s] for s in sorted(set(sessions[mine].tolist()))]
        spread = [grp[np.argsort(np.abs(np.arange(len(grp)) - (len(grp) - 1) / 2), kind="stable")]
                  for grp in by_session]  # centre-out within a session
        picked, depth = [], 0
        while len(picked) < min(per_label, len(mine)):
            for grp in spread:
                if depth < len(grp) and len(picked) < per_label:
                    picked.append(int(grp[depth]))
            depth += 1
        keep.extend(picked)
    return np.sort(np.asarray(keep, dtype=np.int64))


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
