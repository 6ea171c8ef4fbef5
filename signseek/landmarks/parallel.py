"""Holistic extraction across worker processes: one clip split in parts, or many clips at once.

    from signseek.landmarks.parallel import ExtractionPool, extract_many
    with ExtractionPool(workers=2) as pool:
        result = pool.extract_video("clip.mp4")        # the clip split across the workers
        results = pool.extract_many(paths)             # whole clips side by side
    results = extract_many(paths, workers=2)           # one-off pool; errors come back in place

Each worker process holds its own MediaPipe Holistic (graphs are not thread-safe and a
process is the only way past the GIL). Processes are started with "spawn" so the pool is safe
next to threads (servers, the decode thread) and works the same on every OS. Starting a worker
costs about a second (importing MediaPipe, loading models), so a pool is kept and reused:
``shared_pool`` hands out one per configuration for the life of the process.

A clip split in parts is tracked independently in each part: the pose detector runs afresh on
the first frame of every part, just as on the first frame of a clip.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from .extract import (
    DEFAULT_MAX_SIDE,
    ExtractionResult,
    HolisticExtractor,
    _stack,
    build_result,
    extract_video,
)
from .video import DEFAULT_MAX_DURATION_S, DEFAULT_MAX_PIXELS, VideoReader

# ---- worker side: top-level functions so "spawn" can pickle them by name -------------------

_WORKER_EXTRACTOR: HolisticExtractor | None = None


def _init_worker(max_side: int | None) -> None:
    global _WORKER_EXTRACTOR
    _WORKER_EXTRACTOR = HolisticExtractor(max_side=max_side)
    atexit.register(_WORKER_EXTRACTOR.close)


def _warm_worker(pause_s: float) -> int:
    """Run one blank frame so models are loaded before the first real clip."""
    _WORKER_EXTRACTOR.process(np.zeros((64, 64, 3), dtype=np.uint8))
    time.sleep(pause_s)  # hold this worker so the next warm-up task lands on another
    return multiprocessing.current_process().pid


def _extract_part(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _WORKER_EXTRACTOR.reset()
    return _stack([_WORKER_EXTRACTOR.process(rgb) for rgb in frames])


def _extract_path(path: str, options: dict) -> ExtractionResult:
    return extract_video(path, extractor=_WORKER_EXTRACTOR, **options)


# ---- parent side ----------------------------------------------------------------------------


class ExtractionPool:
    """A pool of worker processes, each with its own Holistic, reused across calls."""

    def __init__(self, workers: int = 2, max_side: int | None = DEFAULT_MAX_SIDE, warm: bool = True) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.max_side = max_side
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(max_side,),
        )
        if warm:
            self.warm_up()

    def warm_up(self) -> None:
        """Start every worker and load its models now rather than on the first clip."""
        list(self._executor.map(_warm_worker, [0.3] * self.workers))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def extract_video(
        self,
        path: str | Path,
        *,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        require_person: bool = True,
        parts: int | None = None,
        frame_stride: int = 1,
    ) -> ExtractionResult:
        """One clip split into ``parts`` (default: one per worker) consecutive runs of frames.

        Frames are decoded here and each part is sent off as soon as it is decoded, so the
        first worker starts while the rest of the clip is still decoding.
        """
        start = time.perf_counter()
        reader = VideoReader(path, max_duration_s, max_pixels, max_side=self.max_side, frame_stride=frame_stride)
        parts = parts or self.workers
        declared = -(-reader.info.frame_count // frame_stride) if reader.info.frame_count else None
        part_len = max(1, -(-declared // parts)) if declared else None  # ceil
        futures: list[Future] = []
        pending: list[np.ndarray] = []
        try:
            for rgb in reader:
                pending.append(rgb)
                if part_len and len(pending) == part_len and len(futures) < parts - 1:
                    futures.append(self._executor.submit(_extract_part, pending))
                    pending = []
        finally:
            reader.close()
        if not part_len:  # frame count unknown until decoded: split what we have evenly
            for chunk in np.array_split(np.arange(len(pending)), parts):
                if len(chunk):
                    futures.append(self._executor.submit(_extract_part, pending[chunk[0] : chunk[-1] + 1]))
        elif pending:
            futures.append(self._executor.submit(_extract_part, pending))
        decoded_s = time.perf_counter() - start
        results = [f.result() for f in futures]
        points, visibility, detections = (np.concatenate(arrays) for arrays in zip(*results, strict=True))
        size = reader.frame_size or (reader.info.width, reader.info.height)
        timings = {"total_s": time.perf_counter() - start, "decode_s": decoded_s}
        return build_result(
            points, visibility, detections, reader.fps, size, timings,
            workers=self.workers, video=reader.info, require_person=require_person,
            source=Path(path).name,
        )

    def extract_many(
        self,
        paths: Iterable[str | Path],
        *,
        max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        require_person: bool = True,
        errors: str = "return",
        progress: bool = False,
    ) -> list[ExtractionResult | Exception]:
        """Whole clips side by side, one per worker at a time, results in the order given.

        ``errors="return"`` puts a failed clip's exception (a VideoError, NoPersonDetected, ...)
        in its place in the list, so one bad file does not stop a dataset import;
        ``errors="raise"`` raises the first one.
        """
        if errors not in ("return", "raise"):
            raise ValueError(f"errors must be 'return' or 'raise', got {errors!r}")
        options = {
            "max_duration_s": max_duration_s,
            "max_pixels": max_pixels,
            "max_side": self.max_side,
            "require_person": require_person,
        }
        paths = [str(p) for p in paths]
        futures = [self._executor.submit(_extract_path, p, options) for p in paths]
        if progress:
            from tqdm import tqdm

            for _ in tqdm(as_completed(futures), total=len(futures), desc="extracting", unit="clip"):
                pass
        out: list[ExtractionResult | Exception] = []
        for future in futures:
            try:
                out.append(future.result())
            except Exception as exc:
                if errors == "raise":
                    raise
                out.append(exc)
        return out


def extract_many(
    paths: Sequence[str | Path],
    workers: int = 2,
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    **options,
) -> list[ExtractionResult | Exception]:
    """Extract many clips on ``workers`` processes (a pool made and closed for this call).

    Options as ``ExtractionPool.extract_many``: max_duration_s, max_pixels, require_person,
    errors ("return" puts each failure's exception in its place), progress.
    """
    with ExtractionPool(workers, max_side=max_side, warm=False) as pool:
        return pool.extract_many(paths, **options)


_SHARED: dict[tuple, ExtractionPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(workers: int, max_side: int | None = DEFAULT_MAX_SIDE) -> ExtractionPool:
    """A process-wide pool for this configuration, started on first use, closed at exit."""
    key = (workers, max_side)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ExtractionPool(workers, max_side=max_side)
        return _SHARED[key]


@atexit.register
def _close_shared_pools() -> None:
    for pool in _SHARED.values():
        pool.close()
    _SHARED.clear()
