"""A separate app process writing to a reference store, for tests/test_store_postgres.py (not a test).

    python tests/store_writer.py BUNDLE_DIR LOCATION CLIPS.npz PREFIX N_SIGNS

Enrols signs PREFIX-0, PREFIX-1, ... (every clip of CLIPS.npz each) one after another and prints
"enrolled NAME" after each commit, so the parent can kill it mid-write and check what survived.
"""

from __future__ import annotations

import sys

import numpy as np

from signseek.engine import Engine
from signseek.store import ReferenceStore


def main() -> None:
    bundle, location, clips_path, prefix, n = sys.argv[1:6]
    engine = Engine.from_bundle(bundle, _env_file=None)
    store = ReferenceStore(engine, location, watch=False)
    with np.load(clips_path) as data:
        clips = [data[k] for k in sorted(data.files)]
    print("ready", flush=True)
    for i in range(int(n)):
        store.enrol(f"{prefix}-{i}", clips)
        print(f"enrolled {prefix}-{i}", flush=True)


if __name__ == "__main__":
    main()
