"""Moving enrolled signs: export to a file, import from one, migrate between databases.

- `export_signs(backend, out)`: every enrolled clip as a SignSeek dataset file (the same .npz
  container every importer writes: landmarks [T, 543, 3], label, and the sign's category,
  sentence_id, sentence, source, video_file and created time as extra columns). The trainer and
  the explorer read it like any dataset.
- `import_signs(store, path)`: enrols each sign of such a file through the store (validated,
  embedded by the store's engine, one transaction a sign).
- `migrate(source, target)`: copies signs and clips row for row (embeddings, times and sentence
  ids included; no model needed) from one backend to another, e.g. a SQLite file into
  PostgreSQL, in one transaction; refuses names the target has already.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .backends import SqlBackend
from .records import EnrolmentError, SignInfo, unpack

EXTRA_COLUMNS = ("category", "sentence_id", "sentence", "source", "video_file", "created")


def export_signs(backend: SqlBackend, out: str | Path) -> Path:
    from ..datasets.container import SignDataset

    records = backend.load()
    if not records:
        raise EnrolmentError(f"the store at {backend.location} has no enrolled signs to export", code="nothing_to_export",
                             kind="not_found")
    dataset = SignDataset.from_sequences(
        [unpack(r.landmarks).astype(np.float32) for r in records],
        labels=[r.label for r in records],
        source=f"signseek-store/{backend.kind}",
        ids=[f"enrolled-{r.id}" for r in records],
        extra={
            "category": [r.category for r in records],
            "sentence_id": [int(r.sentence_id) for r in records],
            "sentence": [r.sentence or r.label for r in records],
            "source": [r.source for r in records],
            "video_file": [r.video_file for r in records],
            "created": [r.created for r in records],
        },
    )
    return dataset.save(out)


def import_signs(store, path: str | Path, mode: str = "new") -> dict[str, int]:
    """{sign: clips added}. ``mode`` as `ReferenceStore.enrol` ("new": a name that exists stops
    the import before anything is written)."""
    from ..datasets.container import SignDataset

    dataset = SignDataset.load(path)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(dataset.labels.tolist()):
        by_label[str(label)].append(i)
    extra = {name: dataset.extra[name].tolist() for name in EXTRA_COLUMNS if name in dataset.extra}
    if mode == "new":
        taken = [label for label in by_label if store.sign_status(label).enrolled]
        if taken:
            raise EnrolmentError(f"{len(taken)} sign(s) in {Path(path).name} are enrolled here already: "
                                 f"{', '.join(sorted(taken)[:10])}; delete them first or import with mode 'add'",
                                 code="sign_exists", kind="conflict")
    added: dict[str, int] = {}
    min_clips, store.min_clips = store.min_clips, 1  # an exported sign may have lost clips since it was enrolled
    try:
        for label, idx in by_label.items():
            first = idx[0]
            ids = store.enrol(
                label, [dataset.points(i) for i in idx],
                category=str(extra.get("category", ["word"] * len(dataset))[first] or "word"),
                sources=[str(extra["source"][i]) for i in idx] if "source" in extra else None,
                video_files=[str(extra["video_file"][i]) for i in idx] if "video_file" in extra else None,
                sentence=str(extra["sentence"][first]) if "sentence" in extra else None,
                mode=mode)
            added[label] = len(ids)
    finally:
        store.min_clips = min_clips
    return added


def migrate(source: SqlBackend, target: SqlBackend) -> dict[str, int]:
    """Copy every sign and clip of ``source`` into ``target`` as they are; {"signs", "clips"}."""
    records = source.load()
    signs = source.signs()
    by_label = {s.label: s for s in signs}
    for r in records:  # a clip whose sign row is missing (a damaged store) still moves
        by_label.setdefault(r.label, SignInfo(r.label, r.category, 0, r.created, True, r.sentence_id, r.sentence))
    n = target.copy_in(list(by_label.values()), records)
    return {"signs": len(by_label), "clips": n}
