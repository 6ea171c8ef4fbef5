"""Labelled videos -> SignDataset, through MediaPipe (signseek.landmarks.extract).

Two inputs: a folder ``<root>/<label>/*.mp4|webm|mov|avi`` and a WLASL / MS-ASL manifest whose
clips were downloaded to a folder (see download.py), trimmed to each clip's frame range.

Extraction is slow (about 25 ms a frame), so it is
- parallel: ``workers`` processes on this machine (spawn, one MediaPipe graph each), or Ray
  actors across a cluster (``engine="ray"``), through the one pool of
  `signseek.landmarks.parallel`;
- resumable: every finished clip is written to ``cache_dir/<key>.npz`` as it finishes
  (atomically: a temporary file renamed when complete), keyed by the video's path, size,
  mtime, frame range and extraction options; a later run, after a crash, a Ctrl-C or not,
  loads what is there;
- forgiving: a video that fails is logged, listed in ``dataset.report.skipped``, and the batch
  goes on;
- extracted as the app extracts: ``extract_kwargs["mode"]`` "fast" (pose + hands, no face mesh)
  or "holistic" (every part, the face included), default the LANDMARKS_MODE setting (fast
  unless set). Use "holistic" for a dataset that needs the face (a model whose features read
  face points, a 1662-value MP_Data export). The mode is resolved here, once, and sent with
  every task, so every worker of a cluster runs the same graph.

    ds = import_videos("clips/", workers=2, cache_dir="clips.cache")
    ds = import_videos("clips/", engine="ray", address="10.0.0.5:6379", cache_dir="clips.cache")
    print("\\n".join(ds.report.lines()))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..landmarks.schema import LandmarkSequence
from .container import UNKNOWN_SIGNER, ImportReport, SignDataset
from .errors import DatasetError
from .manifest import VIDEO_EXTENSIONS, find_video, read_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoJob:
    """One clip to extract: a video file, its label, and the frame range to keep."""

    path: str
    label: str
    signer: int | str = UNKNOWN_SIGNER
    frame_start: int = 0  # 0-based inclusive
    frame_end: int | None = None  # 0-based exclusive; None = to the end
    clip_id: str = ""
    extra: dict = field(default_factory=dict)


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "signseek" / "extract"


def cache_key(job: VideoJob, extract_kwargs: dict) -> str:
    """Changes when the file, its frame range or the extraction options change."""
    path = Path(job.path).resolve()
    stat = path.stat()
    parts = [str(path), stat.st_size, stat.st_mtime_ns, job.frame_start, job.frame_end,
             json.dumps(extract_kwargs, sort_keys=True, default=str)]
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def _write_cache(cache_file: Path, seq: LandmarkSequence) -> None:
    tmp = cache_file.with_name(cache_file.stem + f".tmp{os.getpid()}.npz")
    arrays = {"points": seq.points, "fps": np.asarray(np.nan if seq.fps is None else seq.fps)}
    if seq.visibility is not None:
        arrays["visibility"] = seq.visibility
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, cache_file)  # a run killed mid-write leaves only a .tmp file, never a bad entry


def read_cache(cache_file: Path) -> LandmarkSequence | None:
    """The cached clip, or None when missing or unreadable (a partial write: extract again)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            fps = float(data["fps"])
            return LandmarkSequence(
                data["points"],
                visibility=data["visibility"] if "visibility" in data.files else None,
                fps=None if np.isnan(fps) else fps,
            )
    except Exception as exc:  # truncated zip, bad shapes: treat as not done
        log.warning("ignoring unreadable cache entry %s (%s)", cache_file, exc)
        return None


def extract_jobs(
    jobs: list[VideoJob],
    *,
    workers: int | None = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    extract_kwargs: dict | None = None,
    source: str = "videos",
    engine: str = "local",
    address: str | None = None,
) -> SignDataset:
    """Extract every job (cached ones are loaded, not re-run) into a SignDataset.

    ``engine="local"``: ``workers`` processes on this machine (1: this process);
    ``engine="ray"``: ``workers`` Ray actors (default one per CPU) on the cluster at
    ``address`` (see `signseek.landmarks.parallel`). Each clip is written to the cache the
    moment it finishes, so a crash or Ctrl-C loses only the clips in flight. Failed videos are
    left out and listed in the returned dataset's ``report.skipped``.
    """
    # Extraction (OpenCV, MediaPipe) loads only when videos are read.
    from ..landmarks.extract import DEFAULT_MAX_SIDE, resolve_mode
    from ..landmarks.parallel import ClipTask, open_pool

    extract_kwargs = dict(extract_kwargs or {})
    try:
        mode = resolve_mode(extract_kwargs.pop("mode", None))
    except ValueError as exc:  # a mode that is neither "fast" nor "holistic"
        raise DatasetError(f"{exc}; pass --landmarks fast or --landmarks holistic") from None
    # Holistic entries keep the key they had before the mode was an option (no "mode" in it).
    key_kwargs = {**extract_kwargs, "mode": mode} if mode != "holistic" else dict(extract_kwargs)
    extract_kwargs["mode"] = mode
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    report = ImportReport()
    errors: dict[int, str] = {}
    files: dict[int, Path] = {}
    pending: list[int] = []
    for i, job in enumerate(jobs):
        try:
            files[i] = cache / f"{cache_key(job, key_kwargs)}.npz"
        except OSError as exc:
            errors[i] = f"cannot read file: {exc.strerror or exc}"
            continue
        if read_cache(files[i]) is None:
            pending.append(i)
    cached = {i for i in files if i not in pending}

    if pending:
        n_workers = min(workers or 1, len(pending)) if engine == "local" else workers
        max_side = extract_kwargs.get("max_side", DEFAULT_MAX_SIDE)
        tasks = [ClipTask(jobs[i].path, jobs[i].frame_start, jobs[i].frame_end, extract_kwargs) for i in pending]
        with open_pool(engine, n_workers, address=address, max_side=max_side, mode=mode) as pool, \
                tqdm(total=len(pending), desc=f"extracting ({pool.engine}, {pool.workers} workers, {mode})", unit="video",
                     disable=not progress) as bar:
            for k, outcome in pool.imap_unordered(tasks):
                i = pending[k]
                if isinstance(outcome, Exception):  # any failure of one video must not end the batch
                    errors[i] = f"{type(outcome).__name__}: {outcome}".strip()
                else:
                    _write_cache(files[i], outcome.sequence)
                bar.update()

    sequences, kept = [], []
    for i, job in enumerate(jobs):
        if i in errors:
            log.warning("skipped %s: %s", job.path, errors[i])
            report.skipped.append((job.path, errors[i]))
            continue
        seq = read_cache(files[i])
        if seq is None:
            report.skipped.append((job.path, "extraction left no readable result"))
            continue
        sequences.append(seq)
        kept.append(job)
        if i in cached:
            report.cached += 1
        else:
            report.extracted += 1
    report.imported = len(kept)
    if not kept:
        problem = "; ".join(f"{Path(p).name}: {r}" for p, r in report.skipped[:3])
        raise DatasetError(f"no clip could be imported ({problem or 'nothing to import'})")
    extra_names = sorted(set.intersection(*(set(j.extra) for j in kept)))
    dataset = SignDataset.from_sequences(
        sequences,
        labels=[j.label for j in kept],
        signers=[j.signer for j in kept],
        source=source,
        ids=[j.clip_id or Path(j.path).name for j in kept],
        extra={
            "path": [j.path for j in kept],
            "frame_start": [j.frame_start for j in kept],
            **{name: [j.extra[name] for j in kept] for name in extra_names},
        },
    )
    dataset.report = report
    return dataset


def video_jobs_from_folder(root: str | Path) -> list[VideoJob]:
    """``<root>/<label>/<clip>.<video ext>`` -> one job per clip, label = folder name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no videos folder at {root}")
    jobs = [
        VideoJob(path=str(f), label=label_dir.name, clip_id=f"{label_dir.name}/{f.name}")
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for f in sorted(label_dir.iterdir())
        if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
    ]
    if not jobs:
        raise DatasetError(f"{root} has no <label>/<clip>{'|'.join(VIDEO_EXTENSIONS)} files")
    return jobs


def import_videos(root: str | Path, **options) -> SignDataset:
    """Extract a folder of labelled videos; options as :func:`extract_jobs`."""
    options.setdefault("source", f"videos/{Path(root).name}")
    return extract_jobs(video_jobs_from_folder(root), **options)


def video_jobs_from_manifest(
    manifest: str | Path, videos_dir: str | Path, splits: list[str] | None = None
) -> tuple[list[VideoJob], list[tuple[str, str]]]:
    """Jobs for the manifest's clips whose video is in ``videos_dir``, and (video_id, reason) skips."""
    jobs, skipped = [], []
    for entry in read_manifest(manifest):
        if splits and entry.split not in splits:
            continue
        video = find_video(videos_dir, entry.video_id)
        if video is None:
            skipped.append((entry.video_id, f"not downloaded (no {entry.video_id}.* in {videos_dir})"))
            continue
        info = {k: v for k, v in asdict(entry).items() if k in ("split", "url")}
        jobs.append(VideoJob(str(video), entry.label, entry.signer, entry.frame_start, entry.frame_end,
                             entry.video_id, info))
    return jobs, skipped


def import_wlasl(
    manifest: str | Path, videos_dir: str | Path, splits: list[str] | None = None, **options
) -> SignDataset:
    """Extract the clips of a WLASL / MS-ASL manifest, trimmed to their frame ranges.

    Clips whose video is missing from ``videos_dir`` are skipped and reported.
    """
    jobs, missing = video_jobs_from_manifest(manifest, videos_dir, splits)
    if not jobs:
        raise DatasetError(f"none of the clips in {manifest} has a video in {videos_dir}; download them first")
    options.setdefault("source", f"manifest/{Path(manifest).stem}")
    dataset = extract_jobs(jobs, **options)
    dataset.report.skipped[:0] = missing
    return dataset
