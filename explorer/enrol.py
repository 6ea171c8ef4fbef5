"""Enrol picked clips as a sign into a reference store (signseek.store.ReferenceStore), as the demo does.

    enrol_clips("models", dataset, [3, 7, 9], "akwaaba", "data/enrolled.db")

A fresh engine is loaded for the store (the explorer's cached engine keeps the bundle's own
references, so the pages' numbers do not change under the analyst). The store's own rules apply:
at least MIN_ENROL_CLIPS clips, a valid name, shipped signs refused unless the deployment allows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


class EnrolError(RuntimeError):
    """Enrolment refused; the message says why (too few clips, a bad name, no hands...)."""


def default_store() -> str:
    """Where the demo keeps enrolled signs: STORE_URL (PostgreSQL) when set, else the SQLite file STORE_PATH."""
    from signseek.settings import Settings
    from signseek.store.core import store_location

    return str(store_location(Settings()))


def default_label(records: pd.DataFrame) -> str:
    """The clips' most common label (in the demo's feedback file, the users' correction)."""
    values = records["label"].astype(str)
    return str(values.mode().iloc[0]) if len(values) else ""


def enrol_clips(bundle_dir: str | Path, dataset, queries, label: str, store_path: str | Path) -> dict:
    from signseek.engine import Engine
    from signseek.errors import SignSeekError
    from signseek.store import ReferenceStore

    location = str(store_path).strip()
    try:
        engine = Engine.from_bundle(bundle_dir)
        store = ReferenceStore(engine, location if "://" in location else Path(location), watch=False)
        try:
            ids = store.enrol(label, [dataset.points(int(q)) for q in queries],
                              sources=[str(dataset.ids[int(q)]) for q in queries])
            signs = {s.label: s.n_clips for s in store.list_signs()}
        finally:
            store.close()
    except SignSeekError as exc:
        raise EnrolError(str(exc)) from exc
    except (OSError, ValueError) as exc:
        raise EnrolError(f"could not enrol into {store_path}: {exc}") from exc
    name = label.strip()
    return {"label": name, "added": len(ids), "store": str(store_path),
            "references": signs.get(name, len(ids))}
