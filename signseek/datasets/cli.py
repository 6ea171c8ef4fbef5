"""`signseek-data` (also `python -m signseek.datasets`): download, import, inspect and split datasets.

    signseek-data download WLASL_v0.3.json --out videos/ --workers 4 [--dry-run]
    signseek-data import ../shared/datasets/traduttore-asl/signs.npz --format npz --out signs.npz
    signseek-data import clips/ --format videos --out clips.npz --workers 2 --cache-dir clips.cache
    signseek-data import clips/ --format videos --out clips.npz --engine ray --address HEAD:6379
    signseek-data import WLASL_v0.3.json --format wlasl --videos-dir videos/ --out wlasl.npz
    signseek-data inspect signs.npz [--json]
    signseek-data split signs.npz --by session --test 0.2 --val 0.1 --seed 0 --out splits/

Bad input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..errors import SignSeekError
from ..landmarks.layouts import LAYOUTS
from .container import SignDataset, is_dataset_file
from .errors import DatasetError

FORMATS = ("npz", "mpdata", "islr", "pose", "videos", "wlasl", "images")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _import(args) -> SignDataset:
    path = Path(args.path)
    if not path.exists():
        raise DatasetError(f"no such file or folder: {path}")
    video_options = {"workers": args.workers, "cache_dir": args.cache_dir, "progress": not args.quiet,
                     "engine": args.engine, "address": args.address,
                     "extract_kwargs": {"mode": args.landmarks} if args.landmarks else None}
    if args.address and args.engine != "ray":
        raise DatasetError("--address is the Ray cluster's address; use it with --engine ray")
    if args.format == "npz":
        from .npz import import_npz
        return import_npz(path, layout=args.layout)
    if args.format == "mpdata":
        from .mpdata import import_mpdata
        return import_mpdata(path, layout=args.layout)
    if args.format == "islr":
        from .islr import import_islr
        return import_islr(path, limit=args.limit)
    if args.format == "pose":
        from .pose_file import import_pose
        return import_pose(path, label=args.label)
    if args.format == "videos":
        from .videos import import_videos
        return import_videos(path, **video_options)
    if args.format == "wlasl":
        from .videos import import_wlasl
        if not args.videos_dir:
            raise DatasetError("--format wlasl needs --videos-dir (where `signseek-data download` put the clips)")
        return import_wlasl(path, args.videos_dir, splits=args.splits, **video_options)
    from .images import import_images
    return import_images(path, limit_per_label=args.limit, progress=not args.quiet)


def load_any(path: str | Path) -> SignDataset:
    """A SignDataset file, or a shared-layout .npz imported on the fly."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no dataset file at {path}")
    if is_dataset_file(path):
        return SignDataset.load(path)
    from .npz import import_npz
    return import_npz(path)


def cmd_download(args) -> int:
    from .download import download_clips
    report = download_clips(args.manifest, args.out, workers=args.workers, dry_run=args.dry_run,
                            limit=args.limit, progress=not args.quiet)
    if args.dry_run:
        print(f"dry run: would download {len(report.planned)} videos to {args.out}")
        for vid in report.planned:
            print(f"  {vid}")
    print("\n".join(report.lines()))
    return 0


def cmd_import(args) -> int:
    dataset = _import(args)
    out = dataset.save(args.out)
    print(f"wrote {out}: {dataset!r}")
    if dataset.report is not None:
        print("\n".join(dataset.report.lines()))
    return 0


def cmd_inspect(args) -> int:
    dataset = load_any(args.path)
    summary = dataset.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{args.path}: {dataset!r}")
    fpc = summary["frames_per_clip"]
    print(f"frames: {summary['frames']} total, per clip min {fpc['min']} mean {fpc['mean']} max {fpc['max']}")
    print(f"fps: {summary['fps'] or 'unknown'}; sources: {summary['sources']}")
    print(f"stored parts: {', '.join(summary['stored_parts'])} ({summary['stored_points']} points)")
    total = max(summary["frames"], 1)
    print("parts detected (frames): " + ", ".join(
        f"{part} {n} ({100 * n / total:.0f}%)" for part, n in summary["part_frames"].items()))
    print(f"per label ({summary['labels']}): " + ", ".join(f"{k} {v}" for k, v in summary["per_label"].items()))
    print(f"per signer/session ({summary['signers']}): "
          + ", ".join(f"{k} {v}" for k, v in summary["per_signer"].items()))
    return 0


def cmd_split(args) -> int:
    from .splits import make_split
    dataset = load_any(args.path)
    split = make_split(dataset, args.by, args.test, args.val, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    listing = {"by": args.by, "seed": args.seed, "test": args.test, "val": args.val,
               "held_out_labels": split.held_out_labels}
    for side, idx in split.as_dict().items():
        listing[side] = [str(dataset.ids[i]) for i in idx]
        if len(idx):
            dataset.subset(idx).save(out / f"{side}.npz")
        print(f"{side}: {len(idx)} clips")
    (out / "split.json").write_text(json.dumps(listing, indent=1))
    print(f"wrote {out}/{{train,val,test}}.npz and split.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="signseek-data", description=__doc__.split("\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("download", help="fetch the videos of a WLASL / MS-ASL manifest with yt-dlp")
    p.add_argument("manifest", help="WLASL or MS-ASL JSON manifest")
    p.add_argument("--out", required=True, help="folder for <video_id>.<ext> files")
    p.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    p.add_argument("--limit", type=int, help="fetch at most this many videos")
    p.add_argument("--dry-run", action="store_true", help="list what would be downloaded, fetch nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("import", help="read a dataset into one SignSeek dataset file")
    p.add_argument("path", help="file or folder to import (see --format)")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="npz: shared NPZ; mpdata: MP_Data/<label>/<seq>/<frame>.npy; islr: Kaggle ISLR "
                        "train.csv + parquet; pose: .pose file or folder; videos: <root>/<label>/*.mp4; "
                        "wlasl: WLASL/MS-ASL JSON (+ --videos-dir); images: <root>/<label>/*.jpg")
    p.add_argument("--out", required=True, help="dataset file to write (.npz)")
    p.add_argument("--layout", choices=sorted(LAYOUTS), help="flat layout (npz, mpdata); default: by length")
    p.add_argument("--label", help="pose: label for a single file (default: its name)")
    p.add_argument("--videos-dir", help="wlasl: folder holding the downloaded videos")
    p.add_argument("--splits", nargs="+", help="wlasl: only these splits (train val test)")
    p.add_argument("--workers", type=int, default=None,
                   help="videos/wlasl: extraction workers (local: processes, default 1; ray: actors, "
                        "default one per CPU of the cluster)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="videos/wlasl: local = processes on this machine (default); ray = actors on a "
                        "Ray cluster (pip install 'signseek[ray]')")
    p.add_argument("--landmarks", choices=("holistic", "fast"), default=None,
                   help="videos/wlasl: fast = pose + hands, no face mesh (what the app extracts; faster: see "
                        "BENCHMARKS.md); holistic = every part, the face included (for a model that reads face "
                        "points). Default: the LANDMARKS_MODE setting (fast unless set)")
    p.add_argument("--address", help="videos/wlasl with --engine ray: the cluster's address (host:port of "
                                     "`ray start --head`); default: a Ray instance on this machine")
    p.add_argument("--cache-dir", help="videos/wlasl: where finished clips are kept for resuming "
                                       "(default ~/.cache/signseek/extract)")
    p.add_argument("--limit", type=int, help="islr: first N clips; images: N images per label")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("inspect", help="counts per label and session, frames, parts detected")
    p.add_argument("path", help="a SignSeek dataset file or a shared-layout .npz")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("split", help="write train/val/test dataset files and split.json")
    p.add_argument("path", help="a SignSeek dataset file or a shared-layout .npz")
    p.add_argument("--by", required=True, choices=("session", "signer", "label", "stratified"),
                   help="session/signer: group-disjoint; label: held-out labels (few-shot); stratified")
    p.add_argument("--test", type=float, default=0.2, help="test fraction (label: of the labels)")
    p.add_argument("--val", type=float, default=0.0, help="validation fraction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_split)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except (SignSeekError, OSError) as exc:  # DatasetError, LayoutError, the pool's PoolError, ...
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"signseek-data {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"signseek-data {args.command}: interrupted (finished clips are cached; run again to resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
