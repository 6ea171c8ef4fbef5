"""`python -m signseek.store`: look at, migrate, export and import a reference store.

    python -m signseek.store info [--store LOCATION]
    python -m signseek.store migrate data/enrolled.db postgresql://user:pass@host/db
    python -m signseek.store export --out signs.npz [--store LOCATION]
    python -m signseek.store import signs.npz [--store LOCATION] [--add]

LOCATION is a PostgreSQL URL, sqlite:///path or a file path; default: STORE_URL, else
STORE_PATH (environment or .env). `migrate` copies rows as they are (embeddings included, no
model loaded); `import` enrols through the bundle at MODELS_DIR, which embeds the clips.
Bad input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import SignSeekError


def _settings():
    from ..settings import Settings

    return Settings()


def _location(args):
    from .core import store_location

    return args.store or store_location(_settings())


def cmd_info(args) -> int:
    from .backends import open_backend

    backend = open_backend(_location(args))
    try:
        signs = backend.signs()
        print(json.dumps({"store": backend.location, "kind": backend.kind, "signs": len(signs),
                          "clips": sum(s.n_clips for s in signs), "version": backend.version(),
                          "per_sign": {s.label: s.n_clips for s in signs}}, indent=1))
    finally:
        backend.close()
    return 0


def cmd_migrate(args) -> int:
    from .backends import open_backend
    from .transfer import migrate

    source, target = open_backend(args.source), open_backend(args.target)
    try:
        done = migrate(source, target)
    finally:
        source.close()
        target.close()
    print(f"copied {done['signs']} signs ({done['clips']} clips) from {source.location} to {target.location}")
    return 0


def cmd_export(args) -> int:
    from .backends import open_backend
    from .transfer import export_signs

    backend = open_backend(_location(args))
    try:
        out = export_signs(backend, args.out)
    finally:
        backend.close()
    print(f"wrote {out}")
    return 0


def cmd_import(args) -> int:
    from ..engine import Engine
    from .core import ReferenceStore

    settings = _settings()
    engine = Engine.from_bundle(settings.MODELS_DIR)
    store = ReferenceStore(engine, _location(args), watch=False)
    try:
        added = store.import_signs(args.path, mode="auto" if args.add else "new")
    finally:
        store.close()
    print(f"imported {len(added)} signs ({sum(added.values())} clips) into {store.backend.location}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m signseek.store", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="signs and clips in a store")
    p.add_argument("--store", help="PostgreSQL URL, sqlite:///path or a file (default STORE_URL / STORE_PATH)")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("migrate", help="copy every enrolled sign from one store to another (e.g. SQLite -> PostgreSQL)")
    p.add_argument("source", help="the store to copy from (e.g. data/enrolled.db)")
    p.add_argument("target", help="the store to copy into (e.g. postgresql://user:pass@host/db); must not have "
                                  "the same sign names")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("export", help="write the enrolled signs to a SignSeek dataset file")
    p.add_argument("--out", required=True, help="file to write (.npz)")
    p.add_argument("--store", help="default STORE_URL / STORE_PATH")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="enrol the signs of an exported file (embedded by the bundle at MODELS_DIR)")
    p.add_argument("path", help="a file written by `export`")
    p.add_argument("--store", help="default STORE_URL / STORE_PATH")
    p.add_argument("--add", action="store_true", help="add clips to signs enrolled already (default: refuse them)")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SignSeekError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"signseek.store {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
