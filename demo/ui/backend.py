"""What the UI does, without Gradio: clips -> landmarks -> engine -> a rendered, timed outcome.

The backend wraps the API's `Service` (demo/api/service.py), so the UI and the REST API share
one engine, one reference store and one set of settings. It adds what a page needs and an API
does not: progress while MediaPipe runs, the decoded frames kept (small) to draw the skeleton
over, stage timings, live webcam sessions, and messages a signer can read instead of errors.

    backend = DemoBackend.from_api_app(create_app())
    outcome = backend.recognise_clip("clip.mp4", progress=print_progress)
    outcome.result["label"], outcome.skeleton_video, outcome.timings
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from signseek.landmarks.layouts import flat_to_canonical
from signseek.landmarks.schema import LEFT_HAND, RIGHT_HAND

from .. import render
from . import views

log = logging.getLogger("signseek.demo")

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
OVERLAY_MAX_SIDE = 360  # frames kept for the skeleton overlay: small, so long clips stay cheap
Progress = Callable[..., object] | None


class DemoInputError(ValueError):
    """Input the demo cannot use; the message says what to do (shown in the page)."""


@dataclass
class Outcome:
    """One recognition, ready to show."""

    result: dict | None = None  # the API's InferenceResponse dict
    skeleton_video: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> ms
    source: str = ""  # what was recognised, in words
    error: str | None = None  # set instead of result when the input was unusable


@dataclass
class ModelInfo:
    card: str
    vocabulary: pd.DataFrame
    thresholds: pd.DataFrame
    manifest: dict


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def _report(progress: Progress, fraction: float, desc: str) -> None:
    if progress is not None:
        try:
            progress(fraction, desc=desc)
        except Exception:  # progress is cosmetic: never let it break a recognition
            log.debug("progress callback failed", exc_info=True)


def unexpected(exc: Exception) -> str:
    """What the page says about a server-side bug (the traceback goes to the log, not the user)."""
    return (f"Something went wrong on the server ({type(exc).__name__}); it was logged. "
            "Try again, or another clip.")


def _api_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


class DemoBackend:
    def __init__(self, service) -> None:
        self.service = service
        self.settings = service.settings
        self._display_names: dict[str, str] = {}  # browser-playable copy -> the example's own file name

    @classmethod
    def from_api_app(cls, app) -> DemoBackend:
        return cls(app.state.service)

    # ------------------------------------------------------------------ settings the page shows

    @property
    def videos_dir(self) -> Path | None:
        path = Path(self.settings.VIDEOS_DIR)
        return path.resolve() if path.is_dir() else None

    @property
    def max_upload_mb(self) -> float:
        return float(self.settings.MAX_UPLOAD_MB)

    @property
    def min_enrol_clips(self) -> int:
        return int(self.settings.MIN_ENROL_CLIPS)

    live_stream_every = 0.1  # seconds between webcam frames sent to the server
    live_time_limit_s = 120  # one streaming session, then the user presses record again
    live_concurrency = 2  # live sessions processed at once (each holds a MediaPipe graph)
    live_window = 24  # frames recognised together (~2.4 s at 10 frames a second)
    live_stride = 4  # recognise every this many frames

    def thresholds(self) -> dict:
        s = self.settings
        return {name: getattr(s, name) for name in ("SIM_THRESHOLD", "SIM_MARGIN", "MOTION_FLOOR",
                                                    "CONFIDENCE_TEMPERATURE", "DTW_WEIGHT")}

    def example_videos(self) -> list[tuple[str, Path]]:
        """(label, browser-playable path) of each clip in VIDEOS_DIR, the selfie clip first."""
        folder = self.videos_dir
        if folder is None:
            return []
        clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        # The selfie clip first: it is what a webcam user records.
        clips = sorted(clips, key=lambda p: (not p.name.startswith("signer"), p.name))
        playable = []
        for clip in clips:
            try:
                copy = render.browser_playable_copy(clip)
                self._display_names[copy.name] = clip.name  # results name the clip, not the copy
                playable.append((clip.stem.removesuffix("_001"), copy))
            except Exception:  # an undecodable file in the folder: leave it out of the examples
                log.warning("example clip %s cannot be decoded; not offered", clip.name, exc_info=True)
        return playable

    # ------------------------------------------------------------------ extraction

    def extract_clip(self, path: str | Path, progress: Progress = None):
        """A clip -> (ExtractionResult, small RGB frames for the overlay). DemoInputError if unusable."""
        from signseek.landmarks.extract import ExtractionError, NoPersonDetected, extract_frames
        from signseek.landmarks.video import (
            VideoError,
            VideoReader,
            VideoTooLargeError,
            VideoTooLongError,
            downscale,
        )

        path = Path(path)
        if path.suffix.lower() not in VIDEO_SUFFIXES and path.suffix.lower() != ".y4m":
            # Still try to decode it (some browsers record without a suffix), but say what is expected.
            log.info("clip %s has an unusual suffix; trying to decode it anyway", path.name)
        kept: list[np.ndarray] = []
        try:
            reader = VideoReader(path, max_duration_s=self.settings.MAX_VIDEO_SECONDS)
        except (VideoTooLongError, VideoTooLargeError) as exc:
            raise DemoInputError(f"The clip is too long or too large: {exc}.") from None
        except VideoError as exc:
            raise DemoInputError(f"That file cannot be used: {exc}.") from None
        total = reader.info.frame_count or max(1, round((reader.info.duration_s or 2.0) * reader.info.fps))

        def frames() -> Iterator[np.ndarray]:
            for i, rgb in enumerate(reader):
                kept.append(downscale(rgb, OVERLAY_MAX_SIDE))
                if i % 5 == 0:
                    _report(progress, 0.05 + 0.75 * min(1.0, i / total), f"Finding hands and body: frame {i + 1}")
                yield rgb

        try:
            # The service's one Holistic graph: uploads through the API and the UI share it.
            with self.service.extract_lock:
                result = extract_frames(frames(), reader.info.fps, extractor=self.service.holistic())
        except (VideoTooLongError, VideoTooLargeError) as exc:
            raise DemoInputError(f"The clip is too long: {exc}.") from None
        except NoPersonDetected:
            raise DemoInputError("No person was found in the clip: face the camera with your upper body "
                                 "and hands in view, in good light.") from None
        except (VideoError, ExtractionError) as exc:
            raise DemoInputError(f"That clip cannot be used: {exc}.") from None
        finally:
            reader.close()
        return result, kept

    # ------------------------------------------------------------------ recognition

    def _predict(self, points: np.ndarray, fps: float | None) -> dict:
        if len(points) > self.settings.MAX_FRAMES:
            raise DemoInputError(f"The clip has {len(points)} frames, more than the {self.settings.MAX_FRAMES} "
                                 "allowed: trim it to the sign you want recognised.")
        try:
            return self.service.predict(points, fps=fps)
        except Exception as exc:  # the service raises ApiError (4xx) for input it cannot read
            if getattr(exc, "status_code", 500) < 500:
                raise DemoInputError(_api_message(exc)) from None
            raise

    def recognise_clip(self, path: str | Path | None, progress: Progress = None) -> Outcome:
        """Upload / webcam recording / example -> Outcome (never raises)."""
        try:
            return self._recognise_clip(path, progress)
        except Exception as exc:  # a bug, not the user's input: logged, and said plainly in the page
            log.exception("recognising %s failed", path)
            return Outcome(error=unexpected(exc))

    def _recognise_clip(self, path: str | Path | None, progress: Progress = None) -> Outcome:
        if not path:
            return Outcome(error="No clip yet: record one with the webcam, upload a video "
                                 "(mp4, webm, mov or avi) or click one of the examples.")
        name = self._display_names.get(Path(path).name, Path(path).name)
        timings: dict[str, float] = {}
        try:
            _report(progress, 0.02, "Opening the clip")
            start = time.perf_counter()
            extraction, frames = self.extract_clip(path, progress)
            timings["decode + landmarks"] = _ms(start)
            _report(progress, 0.82, "Recognising")
            sequence = extraction.sequence
            result = self._predict(sequence.points, sequence.fps)
        except DemoInputError as exc:
            return Outcome(error=str(exc), timings=timings, source=name)
        timings.update(self._engine_timings(result))
        _report(progress, 0.9, "Drawing the skeleton")
        start = time.perf_counter()
        video = self._render(sequence.points, frames, sequence.fps, result)
        timings["render"] = _ms(start)
        counts = extraction.detection_counts()
        source = (f"{name}: {len(sequence)} frames, hands in {counts['any_hand']}, "
                  f"{extraction.realtime_factor:.1f}x real time")
        return Outcome(result=result, skeleton_video=video, timings=timings, source=source)

    def recognise_random_sample(self, label: str | None = None, progress: Progress = None) -> Outcome:
        """A stored sequence from the sample dataset, replayed as a skeleton and recognised (never raises)."""
        try:
            return self._recognise_random_sample(label, progress)
        except Exception as exc:
            log.exception("recognising a random sample failed")
            return Outcome(error=unexpected(exc))

    def _recognise_random_sample(self, label: str | None = None, progress: Progress = None) -> Outcome:
        try:
            samples = self.service.samples()
        except Exception as exc:
            return Outcome(error=f"The sample dataset is not available: {_api_message(exc)}")
        indices = samples.indices(label)
        if not indices:
            return Outcome(error=f"The sample dataset has no sequence labelled {label!r}.")
        index = random.choice(indices)
        flat = samples.landmarks[index]
        points, _ = flat_to_canonical(flat, samples.layout)
        truth = samples.labels[index]
        _report(progress, 0.3, "Recognising")
        try:
            result = self._predict(points, 30.0)
        except DemoInputError as exc:
            return Outcome(error=str(exc))
        timings = self._engine_timings(result)
        start = time.perf_counter()
        video = self._render(points, None, 15.0, result)  # 20-frame samples: play them at half speed
        timings["render"] = _ms(start)
        shown = "idle / no sign" if truth == "-" else f"'{truth}'"
        return Outcome(result={**result, "expected": truth}, skeleton_video=video, timings=timings,
                       source=f"sample #{index} of {samples.path.name}, signed as {shown}")

    @staticmethod
    def _engine_timings(result: dict) -> dict[str, float]:
        return {f"engine: {k}": round(float(v), 1) for k, v in (result.get("timings_ms") or {}).items()
                if k != "total"}

    def _render(self, points, frames, fps, result) -> Path | None:
        kept = (result.get("diagnostics") or {}).get("kept")
        verdict = result.get("label") if result.get("accepted") else "no sign"
        try:
            return render.render_skeleton_video(points, frames=frames or None, fps=fps or 30.0,
                                                caption=f"SignSeek: {verdict}",
                                                highlight=tuple(kept) if kept else None)
        except render.RenderError:
            log.exception("could not render the skeleton video")
            return None

    # ------------------------------------------------------------------ live webcam

    def new_live_session(self) -> LiveSession:
        return LiveSession(self)

    # ------------------------------------------------------------------ enrolment

    def enrol(self, name: str | None, paths: list[str], progress: Progress = None) -> str:
        try:
            name = self.service.check_name((name or "").strip())
        except Exception as exc:  # ApiError 422 naming what is wrong with the name
            raise DemoInputError(f"Sign name: {_api_message(exc)}.") from None
        paths = [p for p in paths if p]
        if len(paths) < self.min_enrol_clips:
            raise DemoInputError(f"{len(paths)} clip(s) given: adding a sign needs at least {self.min_enrol_clips} "
                                 "clips of it (upload several files and/or record them).")
        clips = []
        for i, path in enumerate(paths):
            _report(progress, i / (len(paths) + 1), f"Landmarks of clip {i + 1} of {len(paths)}")
            try:
                extraction, _ = self.extract_clip(path)
            except DemoInputError as exc:
                raise DemoInputError(f"Clip {i + 1} ({Path(path).name}): {exc}") from None
            clips.append(extraction.sequence.points)
        _report(progress, len(paths) / (len(paths) + 1), "Adding to the reference store")
        try:
            response = self.service.enrol(name, clips, category=None, sources=[Path(p).name for p in paths])
        except Exception as exc:
            if getattr(exc, "status_code", 500) < 500 or isinstance(exc, ValueError):
                raise DemoInputError(_api_message(exc)) from None
            raise
        return (f"Added '{response['name']}' from {response['added']} clips "
                f"({response['references']} references of it, {response['total_references']} in all). "
                "It is recognised from now on.")

    def delete(self, name: str | None) -> str:
        if not name:
            raise DemoInputError("Choose an enrolled sign to delete.")
        try:
            response = self.service.delete(name)
        except Exception as exc:
            if getattr(exc, "status_code", 500) < 500 or isinstance(exc, (ValueError, KeyError)):
                raise DemoInputError(_api_message(exc)) from None
            raise
        return f"Deleted '{response['name']}' ({response['removed']} references)."

    def _signs(self) -> list[dict]:
        try:
            return list(self.service.list_signs()["signs"])
        except Exception:  # no store yet: the bundle's vocabulary, counted from the engine
            log.debug("list_signs failed; counting the engine's references", exc_info=True)
            labels = list(self.service.engine.references.labels)
            categories = self.service.bundle.config.get("categories", {})
            return [{"name": x, "category": categories.get(x), "references": labels.count(x), "enrolled": False}
                    for x in sorted(set(labels))]

    def signs_table(self) -> pd.DataFrame:
        signs = sorted(self._signs(), key=lambda s: (not s.get("enrolled"), s["name"]))  # enrolled first
        rows = [{"sign": s["name"], "category": s.get("category") or "", "references": s["references"],
                 "enrolled": "yes" if s.get("enrolled") else ""} for s in signs]
        return pd.DataFrame(rows, columns=["sign", "category", "references", "enrolled"])

    def enrolled_names(self) -> list[str]:
        return [s["name"] for s in self._signs() if s.get("enrolled")]

    # ------------------------------------------------------------------ model card

    def model_info(self) -> ModelInfo:
        service = self.service
        bundle = service.bundle
        info = service.model_info()
        manifest = dict(bundle.manifest)
        metrics = manifest.get("metrics") or {}
        data = manifest.get("data") or {}
        training = bundle.config.get("training") or {}
        lines = [
            f"## Model `{info.get('model_name')}`",
            f"- **Version** `{service.model_version}` · encoder runtime **{info.get('backend')}** · "
            f"{info.get('embedding_dim')}-d embeddings · index: {info.get('index')}",
            f"- **References**: {info.get('reference_count')} clips of {info.get('num_classes')} signs "
            f"(idle labels: {', '.join(info.get('idle_labels') or []) or 'none'})",
            f"- **Input**: {info.get('input_shape')} (frames x features) · "
            f"classifier heads: {', '.join(info.get('classifiers') or {}) or 'none'}",
            f"- **Bundle**: `{bundle.directory}` · created {manifest.get('created', '?')}",
        ]
        if data:
            digest = f", sha256 `{str(data['sha256'])[:12]}`" if data.get("sha256") else ""
            lines.append(f"- **Training data**: `{data.get('path', '?')}` "
                         f"({data.get('n_sequences', '?')} sequences{digest})")
        if manifest.get("command"):
            lines.append(f"- **Built with**: `{manifest['command']}`")
        if metrics:
            lines.append("\n### Metrics\n| metric | value |\n| --- | --- |")
            for key, value in _flatten(metrics).items():
                shown = f"{value:.3f}" if isinstance(value, float) else str(value)
                lines.append(f"| {key} | {shown} |")
        if training:
            lines.append(f"\n<details><summary>Training configuration</summary>\n\n```\n{_dump(training)}\n```\n</details>")
        sources = getattr(service, "sources", {}) or {}
        rows = [{"setting": k, "value": str(v), "source": sources.get(k, "")}
                for k, v in self.settings.public_dict().items()
                if k in ("SIM_THRESHOLD", "SIM_MARGIN", "MOTION_FLOOR", "PROTOTYPE_CHECK", "CONFIDENCE_TEMPERATURE",
                         "DTW_ENABLED", "DTW_TOP_N", "DTW_WEIGHT", "DTW_BACKEND", "DTW_WINDOW", "DTW_SCALE",
                         "DEFAULT_TOP_K", "SEQ_LEN", "CLASSIFIER_MIN_CONFIDENCE", "MAX_VIDEO_SECONDS",
                         "MAX_FRAMES", "MIN_ENROL_CLIPS", "MODELS_DIR")]
        return ModelInfo(card="\n".join(lines), vocabulary=self.signs_table(),
                         thresholds=pd.DataFrame(rows, columns=["setting", "value", "source"]), manifest=manifest)


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[name] = value
    return out


def _dump(values: dict) -> str:
    import json

    return json.dumps(values, indent=2, default=str)[:4000]


class LiveSession:
    """One browser's webcam stream: its own MediaPipe graph, a sliding window, the captions."""

    def __init__(self, backend: DemoBackend) -> None:
        from demo.api.streaming import FrameWindow

        self.backend = backend
        self.window = FrameWindow(backend.live_window, backend.live_stride)
        self.lock = threading.Lock()  # Gradio may deliver two frames of one session at once
        self.captions: list[str] = []
        self.current = "no sign"
        self.latency_ms: float | None = None
        self._last_accepted: str | None = None
        self._extractor = None

    def _stream(self):
        from signseek.landmarks.extract import StreamExtractor

        if self._extractor is None:
            self._extractor = StreamExtractor(max_side=480)
        return self._extractor

    def push(self, image: np.ndarray) -> np.ndarray:
        """One webcam frame (RGB) -> the frame with its landmarks drawn; updates the captions."""
        start = time.perf_counter()
        rgb = np.ascontiguousarray(np.asarray(image)[..., :3], dtype=np.uint8)
        with self.lock:
            frame = self._stream().process(rgb)
            due = self.window.push(frame.points)
            if due:
                self._recognise()
            elif not (frame.detected[2] or frame.detected[3]) and not self.window.has_hands():
                self.current = "no sign"
            self.latency_ms = (time.perf_counter() - start) * 1000
        return render.draw_skeleton(rgb, frame.points)

    def _recognise(self) -> None:
        if not self.window.has_hands():
            self.current = "no sign"
            self._last_accepted = None
            return
        try:
            result = self.backend._predict(self.window.points(), 1.0 / self.backend.live_stream_every)
        except DemoInputError as exc:
            self.current = f"no sign ({exc})"
            return
        if result.get("accepted"):
            label = str(result["label"])
            self.current = label
            if label != self._last_accepted:
                self.captions.append(label)
                self._last_accepted = label
        else:
            reason = result.get("rejection_reason") or ""
            top = (result.get("top_k") or [{}])[0]
            guess = (f" (closest: '{top['label']}' {top.get('similarity') or 0:.2f})"
                     if top.get("label") and reason not in views.NO_SIGN_REASONS else "")
            self.current = "no sign" + guess
            if reason in views.NO_SIGN_REASONS:
                self._last_accepted = None  # a pause: the same sign again is a new caption

    def caption_html(self) -> str:
        frames = list(self.window.frames)
        hands = sum(bool(np.isfinite(f[LEFT_HAND, 0]).all() or np.isfinite(f[RIGHT_HAND, 0]).all()) for f in frames)
        return views.live_caption_markdown(self.captions, self.current, self.latency_ms,
                                           (hands, len(frames)) if frames else None)

    def reset(self) -> None:
        with self.lock:
            self.captions.clear()
            self.window.clear()
            self.current = "no sign"
            self._last_accepted = None
            if self._extractor is not None:
                self._extractor.reset()

    def close(self) -> None:
        with self.lock:
            if self._extractor is not None:
                self._extractor.close()
                self._extractor = None

    @staticmethod
    def close_quietly(session: LiveSession | None) -> None:
        """gr.State's delete callback: free the MediaPipe graph when the browser tab goes."""
        if isinstance(session, LiveSession):
            try:
                session.close()
            except Exception:
                log.debug("closing a live session failed", exc_info=True)

