"""Landmark extraction on many workers: one pool interface, two engines (local processes, Ray).

    from signseek.landmarks.parallel import ClipTask, open_pool
    with open_pool("local", workers=2) as pool:                  # processes on this machine
    with open_pool("ray", address="10.0.0.5:6379") as pool:      # Ray actors across a cluster
        for i, outcome in pool.imap_unordered(tasks):            # as each clip finishes: an
            ...                                                  # ExtractionResult or its exception
        results = pool.extract_many(paths)                       # in order, errors in place

    with ExtractionPool(workers=2) as pool:                      # the local engine also splits
        result = pool.extract_video("clip.mp4")                  # one clip across its processes

Every worker, whatever the engine, is a `ClipWorker`: it holds one MediaPipe graph (graphs are
not thread-safe, and a process is the only way past the GIL) built by the extractor factory
(`signseek.landmarks.extract.make_extractor`) and reuses it for every clip it is given. Which
graph: a task's ``mode`` option, else the LANDMARKS_MODE setting (the fast pose + hands path
unless set to "holistic"), so a dataset is extracted the way the app extracts what it recognises;
the dataset importer resolves the mode once, on the driver, and sends it with every task, so
every machine of a cluster runs the same graph whatever its own environment says. The local engine runs workers in
processes started with "spawn" (safe next to threads, the same on every OS; `workers=1` runs
in this process); the Ray engine runs them as Ray actors, one CPU each, and ships each video's
bytes with the task so the worker machines need no shared filesystem. A worker that dies (a
crash in the decoder or MediaPipe) fails only the clips it held, as `WorkerDied`; the pool
goes on. Starting a worker costs about a second (importing MediaPipe, loading models), so
pools are kept and reused: ``shared_pool`` hands out one local pool per configuration.

A clip split in parts (`ExtractionPool.extract_video`, what ``extract_video(workers=2)`` runs) is
tracked independently in each part: the pose detector runs afresh on the first frame of every
part, just as on the first frame of a clip. That path always runs full Holistic (``SPLIT_MODE``):
the fast extractor already pipelines one clip's frames over both cores by itself.
"""

from __future__ import annotations

import atexit
import copy
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np

from ..errors import SignSeekError
from .extract import (
    DEFAULT_MAX_SIDE,
    ExtractionError,
    ExtractionResult,
    _stack,
    build_result,
    extract_frames,
    extract_video,
    make_extractor,
    resolve_mode,
)
from .video import DEFAULT_MAX_DURATION_S, DEFAULT_MAX_PIXELS, VideoReader

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


class PoolError(SignSeekError, RuntimeError):
    """The pool itself cannot work (Ray missing or unreachable, every worker gone)."""

    code = "pool_unavailable"
    kind = "unavailable"


class WorkerDied(ExtractionError):
    """The worker holding this clip died (a crash in the decoder or MediaPipe); run again to retry."""

    code = "worker_died"
    kind = "unavailable"


# A clip split across processes runs full Holistic (what its tests compare it with); whole clips
# run the task's mode, else LANDMARKS_MODE.
SPLIT_MODE = "holistic"


@dataclass(frozen=True)
class ClipTask:
    """One clip for a worker: a video file, optionally a frame range of it, and options.

    ``options``: max_duration_s, max_pixels, require_person, frame_stride, max_side (as
    `extract_video`), mode ("fast" or "holistic"; absent: the worker's LANDMARKS_MODE).
    ``data``: the file's bytes, for workers that cannot read ``path``.
    """

    path: str
    frame_start: int = 0  # 0-based inclusive
    frame_end: int | None = None  # 0-based exclusive; None = to the end
    options: dict = field(default_factory=dict)
    data: bytes | None = None

    @property
    def trimmed(self) -> bool:
        return bool(self.frame_start) or self.frame_end is not None


class ClipWorker:
    """What every worker holds: one MediaPipe graph (`make_extractor`: "fast" or "holistic";
    ``mode=None``: the LANDMARKS_MODE setting), built on first use, reused across clips."""

    def __init__(self, max_side: int | None = DEFAULT_MAX_SIDE, mode: str | None = None) -> None:
        self.max_side = max_side
        self.mode = mode
        self._extractor = None
        self._extractor_mode: str | None = None

    def extractor(self, max_side: int | None = None, mode: str | None = None):
        max_side = self.max_side if max_side is None else max_side
        mode = resolve_mode(mode or self.mode)
        if self._extractor is None or (self._extractor.max_side, self._extractor_mode) != (max_side, mode):
            self.close()
            self._extractor = make_extractor(mode, max_side=max_side)
            self._extractor_mode = mode
        return self._extractor

    def warm(self) -> int:
        """Load the models now (one blank frame); returns this worker's process id."""
        self.extractor().process(np.zeros((64, 64, 3), dtype=np.uint8))
        return os.getpid()

    def run(self, task: ClipTask) -> ExtractionResult | Exception:
        """Extract one clip; a failure is returned (not raised) so it crosses any engine intact."""
        try:
            if task.data is None:
                return self._extract(task, task.path)
            suffix = Path(task.path).suffix
            with tempfile.NamedTemporaryFile(prefix="signseek-clip-", suffix=suffix) as tmp:
                tmp.write(task.data)
                tmp.flush()
                try:
                    result = self._extract(task, tmp.name)
                except Exception as exc:  # name the user's file, not our copy of it
                    exc.args = tuple(a.replace(tmp.name, task.path).replace(Path(tmp.name).name, Path(task.path).name)
                                     if isinstance(a, str) else a for a in exc.args)
                    raise
            result.sequence.meta["source"] = Path(task.path).name
            return result
        except Exception as exc:  # one bad clip must not take the worker down
            return exc

    def _extract(self, task: ClipTask, path: str) -> ExtractionResult:
        options = dict(task.options)
        extractor = self.extractor(options.pop("max_side", None), options.pop("mode", None))
        if not task.trimmed:
            return extract_video(path, max_side=extractor.max_side, extractor=extractor, **options)
        # A clip cut from a longer video (WLASL, MS-ASL): decode up to its end, run MediaPipe on
        # its frames only. The duration limit is for whole uploads, not for the range asked for.
        reader = VideoReader(path, None, options.get("max_pixels", DEFAULT_MAX_PIXELS),
                             max_side=extractor.max_side)
        try:
            frames = islice(iter(reader), task.frame_start, task.frame_end)
            return extract_frames(frames, reader.info.fps, extractor=extractor,
                                  require_person=options.get("require_person", True))
        except ExtractionError as exc:
            if "no frames" in str(exc):
                raise ExtractionError(
                    f"no frames in [{task.frame_start}, {task.frame_end}) of {Path(task.path).name}; "
                    "check the clip's frame range against the video") from None
            raise
        finally:
            reader.close()

    def run_part(self, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Consecutive frames of one clip, tracked from a fresh start (the split-clip path, Holistic)."""
        extractor = self.extractor(mode=SPLIT_MODE)
        extractor.reset()
        return _stack([extractor.process(rgb) for rgb in frames])

    def close(self) -> None:
        if self._extractor is not None:
            self._extractor.close()
            self._extractor = None


# ---- the interface ---------------------------------------------------------------------------


class ClipPool:
    """Workers extracting clips. Engines implement ``imap_unordered`` and ``close``."""

    engine = "?"
    workers = 1

    def imap_unordered(self, tasks: Sequence[ClipTask]) -> Iterator[tuple[int, ExtractionResult | Exception]]:
        """(index into ``tasks``, ExtractionResult or the clip's exception), as each finishes."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ClipPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
        """Whole clips side by side, results in the order given.

        ``errors="return"`` puts a failed clip's exception (a VideoError, NoPersonDetected, ...)
        in its place in the list, so one bad file does not stop a dataset import;
        ``errors="raise"`` raises the first one.
        """
        if errors not in ("return", "raise"):
            raise ValueError(f"errors must be 'return' or 'raise', got {errors!r}")
        options = {"max_duration_s": max_duration_s, "max_pixels": max_pixels, "require_person": require_person}
        tasks = [ClipTask(str(p), options=options) for p in paths]
        out: list[ExtractionResult | Exception | None] = [None] * len(tasks)
        from tqdm.auto import tqdm

        with tqdm(total=len(tasks), desc="extracting", unit="clip", disable=not progress) as bar:
            for i, outcome in self.imap_unordered(tasks):
                out[i] = outcome
                bar.update()
        if errors == "raise":
            for outcome in out:
                if isinstance(outcome, Exception):
                    raise outcome
        return out  # type: ignore[return-value]


def open_pool(engine: str = "local", workers: int | None = None, *, address: str | None = None,
              max_side: int | None = DEFAULT_MAX_SIDE, mode: str | None = None) -> ClipPool:
    """A pool on ``engine``: "local" (``workers`` processes; 1 = this process) or "ray"
    (``workers`` actors, default one per CPU of the cluster at ``address``; no address: a
    Ray instance started for this process). ``mode``: the workers' graph for tasks that name
    none ("fast" / "holistic"; None: each worker's LANDMARKS_MODE)."""
    if engine == "local":
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if (workers or 1) == 1:
            return InProcessPool(max_side=max_side, mode=mode)
        return ExtractionPool(workers, max_side=max_side, warm=False, mode=mode)
    if engine == "ray":
        return RayPool(address=address, workers=workers, max_side=max_side, mode=mode)
    raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


# ---- local engine: this process, or worker processes ----------------------------------------


class InProcessPool(ClipPool):
    """One worker in this process: no start-up cost, for one clip or one core."""

    engine = "local"
    workers = 1

    def __init__(self, max_side: int | None = DEFAULT_MAX_SIDE, mode: str | None = None) -> None:
        self.max_side = max_side
        self._worker = ClipWorker(max_side, mode)

    def imap_unordered(self, tasks):
        for i, task in enumerate(tasks):
            yield i, self._worker.run(task)

    def close(self) -> None:
        self._worker.close()


# Worker-process side: top-level functions so "spawn" can pickle them by name.
_WORKER: ClipWorker | None = None


def _init_worker(max_side: int | None, mode: str | None) -> None:
    global _WORKER
    _WORKER = ClipWorker(max_side, mode)
    atexit.register(_WORKER.close)


def _warm_worker(pause_s: float) -> int:
    pid = _WORKER.warm()
    time.sleep(pause_s)  # hold this worker so the next warm-up task lands on another
    return pid


def _run_clip(task: ClipTask) -> ExtractionResult | Exception:
    return _WORKER.run(task)


def _run_part(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _WORKER.run_part(frames)


class ExtractionPool(ClipPool):
    """Worker processes on this machine, each with its own MediaPipe graph, reused across calls."""

    engine = "local"

    def __init__(self, workers: int = 2, max_side: int | None = DEFAULT_MAX_SIDE, warm: bool = True,
                 mode: str | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.max_side = max_side
        self.mode = mode
        self._executor = self._new_executor()
        if warm:
            self.warm_up()

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: MediaPipe's graph and threads do not survive a fork.
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.max_side, self.mode))

    def warm_up(self) -> None:
        """Start every worker and load its models now rather than on the first clip."""
        list(self._executor.map(_warm_worker, [0.3] * self.workers))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def imap_unordered(self, tasks):
        tasks = list(tasks)
        queued = iter(range(len(tasks)))
        running: dict[Future, int] = {}
        window = 2 * self.workers  # a few queued per worker: no idle gaps, bounded memory
        try:
            while True:
                for i in islice(queued, max(0, window - len(running))):
                    running[self._executor.submit(_run_clip, tasks[i])] = i
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    i = running.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        outcome = WorkerDied("a worker process died while extracting this clip (a crash in "
                                             "the decoder or MediaPipe); run the import again to retry it")
                    yield i, outcome
                if broken:  # every clip in flight failed with the pool; start a fresh one
                    self._executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._new_executor()
        finally:
            for future in running:
                future.cancel()

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
                    futures.append(self._executor.submit(_run_part, pending))
                    pending = []
        finally:
            reader.close()
        if not part_len:  # frame count unknown until decoded: split what we have evenly
            for chunk in np.array_split(np.arange(len(pending)), parts):
                if len(chunk):
                    futures.append(self._executor.submit(_run_part, pending[chunk[0] : chunk[-1] + 1]))
        elif pending:
            futures.append(self._executor.submit(_run_part, pending))
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


# ---- Ray engine: actors across a cluster ------------------------------------------------------


def _import_ray():
    try:
        import ray
    except ImportError:
        raise PoolError("the Ray engine needs Ray: pip install 'signseek[ray]' (on every machine of the "
                        "cluster)") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A TCP connection to the cluster's address (host:port), or a PoolError saying so."""
    import socket

    address = address.removeprefix("ray://")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise PoolError(f"the Ray address {address!r} is not host:port (the address `ray start --head` printed)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise PoolError(f"could not connect to a Ray cluster at {address} ({exc.strerror or exc}); start one "
                        "with `ray start --head` and pass the address it prints") from None


def _out_of_object_store(outcome):
    """A copy of a Ray result that owns its arrays. ``ray.get`` hands numpy arrays back as
    read-only views of the object store's shared memory, which stop being the result's once the
    pool has shut Ray down (a caller reading results after ``close``, as ``extract_many`` returns
    them, read other clips' bytes: measured in benchmarks/bench_scaling.py)."""
    return copy.deepcopy(outcome)


class RayPool(ClipPool):
    """``workers`` Ray actors (one CPU each), each a `ClipWorker` kept alive across clips.

    Each actor has at most two clips queued, so a video's bytes travel while the previous clip
    is extracted and memory stays bounded however many clips there are. An actor that dies is
    restarted by Ray (up to ``max_restarts`` times); the clips it held come back as `WorkerDied`.
    """

    engine = "ray"
    IN_FLIGHT_PER_WORKER = 2

    def __init__(self, address: str | None = None, workers: int | None = None,
                 max_side: int | None = DEFAULT_MAX_SIDE, ship_videos: bool = True, max_restarts: int = 3,
                 mode: str | None = None) -> None:
        ray = self._ray = _import_ray()
        self.address = address
        self.max_side = max_side
        self.ship_videos = ship_videos
        self.max_restarts = max_restarts
        self._owns_ray = False
        if not ray.is_initialized():
            if address and address != "auto":
                _check_reachable(address)  # ray.init retries an absent cluster for minutes
            try:
                # Worker output (MediaPipe's logs) stays in the cluster's log files, not on our stderr.
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                         configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {address}" if address else "on this machine"
                raise PoolError(f"could not connect to a Ray cluster {where} ({str(exc).splitlines()[0]}); "
                                "start one with `ray start --head` and pass its address") from None
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers and workers > cpus:
            log.warning("the Ray cluster has %d CPUs; using %d workers, not %d", cpus, cpus, workers)
        self.workers = min(workers or cpus, cpus) or 1
        actor = ray.remote(num_cpus=1, max_restarts=max_restarts)(ClipWorker)
        self._actors = [actor.remote(max_side, mode) for _ in range(self.workers)]

    def _with_data(self, task: ClipTask) -> ClipTask:
        if not self.ship_videos or task.data is not None:
            return task
        return replace(task, data=Path(task.path).read_bytes())

    def imap_unordered(self, tasks):
        ray = self._ray
        from ray.exceptions import RayActorError, RayTaskError

        tasks = list(tasks)
        queued = iter(range(len(tasks)))
        load = dict.fromkeys(range(len(self._actors)), 0)
        crashes = dict.fromkeys(load, 0)
        running: dict = {}  # ObjectRef -> (task index, actor index)
        try:
            while True:
                for a in sorted(load, key=load.get):
                    while load[a] < self.IN_FLIGHT_PER_WORKER:
                        i = next(queued, None)
                        if i is None:
                            break
                        try:
                            task = self._with_data(tasks[i])
                        except OSError as exc:
                            yield i, exc
                            continue
                        running[self._actors[a].run.remote(task)] = (i, a)
                        load[a] += 1
                if not running:
                    return
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    i, a = running.pop(ref)
                    if a in load:
                        load[a] -= 1
                    try:
                        outcome = _out_of_object_store(ray.get(ref))
                    except RayActorError as exc:
                        log.warning("Ray worker %d failed: %s", a, str(exc).splitlines()[0])
                        crashes[a] += 1
                        if crashes[a] > self.max_restarts and a in load:  # restarts used up: retire it
                            del load[a]
                            if not load:
                                raise PoolError("every Ray worker died; see the cluster's logs "
                                                "(ray logs) for why") from None
                        outcome = WorkerDied("the Ray worker holding this clip died (a crash in the decoder "
                                             "or MediaPipe, or its node left); run the import again to retry it")
                    except RayTaskError as exc:  # ClipWorker returns failures, so this is unexpected
                        outcome = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
                    yield i, outcome
        finally:
            for ref in running:
                ray.cancel(ref, force=False)

    def close(self) -> None:
        ray = self._ray
        for actor in self._actors:
            try:
                ray.kill(actor)
            except Exception:  # already gone with its node
                pass
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()


# ---- one-off and shared local pools ------------------------------------------------------------


def extract_many(
    paths: Sequence[str | Path],
    workers: int = 2,
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    engine: str = "local",
    address: str | None = None,
    mode: str | None = None,
    **options,
) -> list[ExtractionResult | Exception]:
    """Extract many clips on ``workers`` workers (a pool made and closed for this call).

    ``mode``: "fast" / "holistic" (None: LANDMARKS_MODE). Options as ``ClipPool.extract_many``:
    max_duration_s, max_pixels, require_person, errors ("return" puts each failure's exception
    in its place), progress.
    """
    with open_pool(engine, workers, address=address, max_side=max_side, mode=mode) as pool:
        return pool.extract_many(paths, **options)


_SHARED: dict[tuple, ExtractionPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(workers: int, max_side: int | None = DEFAULT_MAX_SIDE) -> ExtractionPool:
    """A process-wide local pool for this configuration (for splitting clips: Holistic), started
    on first use, closed at exit."""
    key = (workers, max_side)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ExtractionPool(workers, max_side=max_side, mode=SPLIT_MODE)
        return _SHARED[key]


@atexit.register
def _close_shared_pools() -> None:
    for pool in _SHARED.values():
        pool.close()
    _SHARED.clear()
