"""What the UI does, without Gradio: clips -> landmarks -> engine -> a rendered, timed outcome.

The backend wraps the API's `Service` (demo/api/service.py), so the UI and the REST API share
one engine, one reference store, one set of settings and one rule for writes. It adds what a
page needs and an API does not: progress while MediaPipe runs, a bounded set of decoded frames
to draw the skeleton over, a browser-playable preview of clips Chromium cannot play, stage
timings, built-in examples that answer at once, the vocabulary gallery, live webcam sessions,
the enrolment conversation (add to an existing sign? close to another sign?), the feedback flag,
and messages a signer can read instead of errors.

    backend = DemoBackend.from_api_app(create_app())
    outcome = backend.recognise_clip("clip.mp4", progress=print_progress)
    outcome.result["label"], outcome.skeleton_video, outcome.timings
"""

from __future__ import annotations

import inspect
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from signseek.errors import SignSeekError
from signseek.feedback import WHAT_IS_KEPT, FeedbackError, FeedbackStore
from signseek.landmarks.extract import letterbox_points
from signseek.landmarks.layouts import flat_to_canonical
from signseek.landmarks.schema import LEFT_HAND, RIGHT_HAND
from signseek.ranker import unknown_score

from .. import render
from . import views
from .examples import (
    NO_SIGN,
    REJECT,
    Example,
    HeldOut,
    LandmarkCache,
    file_sha256,
    sample_examples,
    video_examples,
)
from .gallery import Gallery

log = logging.getLogger("signseek.demo")

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
OVERLAY_MAX_SIDE = 360  # frames kept for the skeleton overlay: small, so long clips stay cheap
OVERLAY_MAX_FRAMES = 120  # at most this many, spread over the clip (bounded memory, any clip)
LANGUAGE = os.environ.get("DEMO_LANGUAGE", "American Sign Language (ASL)")
Progress = Callable[..., object] | None


class DemoInputError(ValueError):
    """Input the demo cannot use; the message says what to do (shown in the page)."""


@dataclass
class Outcome:
    """One recognition, ready to show."""

    result: dict | None = None  # the API's InferenceResponse dict (+ "expected" for examples)
    skeleton_video: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> ms
    source: str = ""  # what was recognised, in words
    error: str | None = None  # set instead of result when the input was unusable
    points: np.ndarray | None = None  # the landmarks the engine saw (kept for a "wrong answer?" flag)
    preview: Path | None = None  # a browser-playable copy of the input, when the browser cannot play it
    clip: str = ""  # the clip's name
    drawing: bool = False  # the answer is ready; the overlay (and preview) are still being drawn


@dataclass
class EnrolOutcome:
    kind: str  # "added" or "confirm" (the name exists: add to it?)
    message: str
    warning: str = ""  # e.g. the clips sit close to another sign


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


def _user_facing(exc: Exception) -> bool:
    """A refusal the user can act on (a domain error, or an HTTP 4xx), not a server bug."""
    if isinstance(exc, SignSeekError):
        return True
    return getattr(exc, "status_code", 500) < 500


class DemoBackend:
    def __init__(self, service, feedback: FeedbackStore | None | bool = True) -> None:
        self.service = service
        self.settings = service.settings
        self.cache = LandmarkCache(max_entries=12)
        self.gallery = Gallery(service, self.videos_dir)
        if feedback is True:
            feedback = FeedbackStore.from_env(default_dir=Path(self.settings.STORE_PATH).parent / "feedback")
        self.feedback: FeedbackStore | None = feedback if isinstance(feedback, FeedbackStore) else None
        self._examples: list[Example] | None = None
        self._held_out: HeldOut | None = None
        self._held_out_refs = None  # the ReferenceSet the held-out check was made against
        self._sample_videos: dict[int, Path] = {}
        self._lock = threading.Lock()
        self._warm_thread: threading.Thread | None = None
        self.warm_done = threading.Event()

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

    @property
    def access(self) -> str:
        """Who may add and delete signs: "open", "key" (API_KEY set) or "read_only" (READ_ONLY)."""
        if getattr(self.settings, "READ_ONLY", False):
            return "read_only"
        return "key" if self.settings.API_KEY else "open"

    live_stream_every = 0.1  # seconds between webcam frames sent to the server
    live_time_limit_s = 120  # one streaming session, then the user presses record again
    live_concurrency = 2  # live sessions processed at once (each holds a MediaPipe graph)
    live_window = 24  # frames recognised together (~2.4 s at 10 frames a second)
    live_stride = 4  # recognise every this many frames

    def thresholds(self) -> dict:
        s = self.settings
        names = ("SIM_THRESHOLD", "SIM_MARGIN", "MOTION_FLOOR", "CONFIDENCE_TEMPERATURE", "DTW_WEIGHT",
                 "MIN_CONFIDENCE", "CLASSIFIER_MIN_CONFIDENCE")
        return {name: getattr(s, name) for name in names if hasattr(s, name)}

    def vocabulary(self) -> list[str]:
        """The signs the engine answers with (idle labels excluded), A-Z."""
        idle = set(self.service.engine.idle_labels)
        return sorted({x for x in self.service.engine.references.labels if x not in idle})

    def vocabulary_summary(self) -> str:
        """One sentence for the first screen: the language and every sign it knows."""
        refs = self.service.engine.references
        idle = set(self.service.engine.idle_labels)
        cats: dict[str, set[str]] = {}
        for label, cat in zip(refs.labels, refs.categories, strict=True):
            if label not in idle:
                cats.setdefault(cat or "other", set()).add(label)
        total = len({x for members in cats.values() for x in members})
        enrolled = {s["name"] for s in self._signs() if s.get("enrolled")}
        parts = []
        for cat, noun in (("word", "words"), ("letter", "fingerspelled letters"), ("phrase", "phrases")):
            members = sorted(cats.pop(cat, set()) - enrolled)
            if members:
                parts.append(f"{len(members)} {noun} ({', '.join(members)})")
        rest = sorted({x for members in cats.values() for x in members} - enrolled)
        if rest:
            parts.append(f"{len(rest)} other signs ({', '.join(rest)})")
        text = f"It knows **{total} signs of {LANGUAGE}**: " + "; ".join(parts)
        if enrolled:
            text += f"; and {len(enrolled)} added here ({', '.join(sorted(enrolled))})"
        return text + "."

    # ------------------------------------------------------------------ extraction

    def extract_clip(self, path: str | Path, progress: Progress = None):
        """A clip -> (ExtractionResult, FrameKeeper of small RGB frames). DemoInputError if unusable.

        At most OVERLAY_MAX_FRAMES frames are kept, downscaled, whatever the clip's length.
        """
        from signseek.landmarks.extract import ExtractionError, NoPersonDetected, extract_frames
        from signseek.landmarks.video import VideoError, VideoReader, downscale

        path = Path(path)
        if path.suffix.lower() not in VIDEO_SUFFIXES and path.suffix.lower() != ".y4m":
            # Still try to decode it (some browsers record without a suffix), but say what is expected.
            log.info("clip %s has an unusual suffix; trying to decode it anyway", path.name)
        # The service's rule for clips, whatever the door: probed from the header and refused before
        # anything is decoded (too long, too many pixels a frame, or a decoding bomb: more than
        # MAX_DECODE_MPIX megapixels in all), then read with its limits (fast clips at MODEL_FPS).
        try:
            info = self.service.check_clip(path, path.name)
            reader = VideoReader(path, display_name=path.name, info=info, **self.service.clip_limits())  # probed once
        except VideoError as exc:
            raise DemoInputError(f"That file cannot be used: {_api_message(exc)}.") from None
        total = reader.info.frame_count or max(1, round((reader.info.duration_s or 2.0) * reader.info.fps))
        keeper = render.FrameKeeper(OVERLAY_MAX_FRAMES, expected=total)

        def frames(graph_side: int | None):
            for i, rgb in enumerate(reader):
                # Shrunk here as the graph would shrink it (the same call: a no-op there then), so the frame
                # kept for the overlay is shrunk from that, not from the full size (3 ms a 720p frame less).
                rgb = downscale(rgb, graph_side)
                keeper.offer(i, lambda rgb=rgb: downscale(rgb, OVERLAY_MAX_SIDE))
                if i % 5 == 0:
                    _report(progress, 0.05 + 0.75 * min(1.0, i / total),
                            f"Finding hands and body: frame {i + 1} of {total}")
                yield rgb

        try:
            # The service's one Holistic graph: uploads through the API and the UI share it.
            with self.service.extract_lock:
                extractor = self.service.holistic()
                result = extract_frames(frames(getattr(extractor, "max_side", None)), reader.fps, extractor=extractor)
        except NoPersonDetected:
            raise DemoInputError("No person was found in the clip: face the camera with your upper body "
                                 "and hands in view, in good light.") from None
        except (VideoError, ExtractionError) as exc:
            raise DemoInputError(f"That clip cannot be used: {_api_message(exc)}.") from None
        except SignSeekError as exc:  # e.g. the extraction queue is full (Busy)
            raise DemoInputError(_api_message(exc)) from None
        finally:
            reader.close()
        return result, keeper

    # ------------------------------------------------------------------ recognition

    def _predict(self, points: np.ndarray, fps: float | None) -> dict:
        if len(points) > self.settings.MAX_FRAMES:
            raise DemoInputError(f"The clip has {len(points)} frames, more than the {self.settings.MAX_FRAMES} "
                                 "allowed: trim it to the sign you want recognised.")
        try:
            return self.service.predict(points, fps=fps)
        except Exception as exc:  # a refusal of the input: said in the page
            if _user_facing(exc):
                raise DemoInputError(_api_message(exc)) from None
            raise

    def recognise_clip(self, path: str | Path | None, progress: Progress = None, name: str | None = None,
                       expected: str | None = None) -> Outcome:
        """Upload / webcam recording / example clip -> Outcome, overlay drawn (never raises)."""
        outcome = Outcome(error=unexpected(RuntimeError("no outcome")))
        for outcome in self.recognise_clip_steps(path, progress, name, expected):  # noqa: B007
            pass
        return outcome

    def recognise_clip_steps(self, path: str | Path | None, progress: Progress = None, name: str | None = None,
                             expected: str | None = None) -> Iterator[Outcome]:
        """The same, in steps for a page: the answer as soon as the engine gives it (``drawing`` True,
        no overlay yet), then the same Outcome with the skeleton overlay. The overlay is no part of the
        answer, so nobody waits for it to read the verdict. Never raises; a clip whose overlay is
        ready (cached) answers in one step."""
        answered = None
        try:
            for outcome in self._recognise_clip_steps(path, progress, name, expected):
                answered = outcome
                yield outcome
        except Exception as exc:  # a bug, not the user's input: logged, and said plainly in the page
            log.exception("recognising %s failed", path)
            if answered is None or answered.result is None:
                yield Outcome(error=unexpected(exc))
            else:  # the answer stands; only the drawing failed
                yield replace(answered, drawing=False)

    def _recognise_clip_steps(self, path, progress, name, expected) -> Iterator[Outcome]:
        if not path:
            yield Outcome(error="No clip yet: record one with the webcam, upload a video "
                                "(mp4, webm, mov or avi) or click one of the examples.")
            return
        path = Path(path)
        name = name or path.name
        timings: dict[str, float] = {}
        try:
            _report(progress, 0.02, "Opening the clip")
            entry = self._landmarks(path, progress, timings)
            reason = render.preview_reason(path) if entry.get("keeper") is not None else ""
            if reason:  # Chromium cannot show the upload as it is (HEVC, a webm without a duration): an H.264
                # copy for the input player, shown with the answer (a fraction of a second, only for such clips)
                _report(progress, 0.85, "Making a preview your browser can play")
                self._preview(entry, path, reason, timings)
            _report(progress, 0.9, "Recognising")
            result = self._predict(entry["points"], entry["fps"])
        except DemoInputError as exc:
            yield Outcome(error=str(exc), timings=timings, source=name, clip=name)
            return
        timings.update(self._engine_timings(result))
        if expected is not None:
            result = {**result, "expected": expected}
        source = (f"{name}: {entry['n_frames']} frames, hands in {entry['hands']}"
                  + (f", {entry['realtime']:.1f}x real time" if entry.get("realtime") else ", landmarks cached"))
        outcome = Outcome(result=result, skeleton_video=entry["overlay"], timings=timings, source=source,
                          points=entry["points"], preview=entry.get("preview"), clip=name)
        if entry.get("overlay") is None:
            yield replace(outcome, timings=dict(timings), drawing=True)  # the answer, now
            start = time.perf_counter()
            entry["overlay"] = self._render_overlay(entry, result)
            timings["render"] = _ms(start)
            outcome.skeleton_video = entry["overlay"]
        entry.pop("keeper", None)  # frames go once drawn: only landmarks and file paths stay cached
        yield outcome

    def _landmarks(self, path: Path, progress: Progress, timings: dict) -> dict:
        """The clip's landmarks (and, when it is new, the frames to draw on), cached by content."""
        if not path.is_file():
            raise DemoInputError(f"The file {path.name} is not there any more: upload it again.")
        sha = file_sha256(path)
        entry = self.cache.get(sha)
        if entry is not None:
            timings["decode + landmarks (cached)"] = 0.0
            if entry.get("overlay") is not None and not Path(entry["overlay"]).is_file():
                entry["overlay"] = None  # the temporary folder was cleaned: draw it again
            return {**entry, "realtime": None}
        start = time.perf_counter()
        extraction, keeper = self.extract_clip(path, progress)
        timings["decode + landmarks"] = _ms(start)
        sequence = extraction.sequence
        draw = extraction.frame_points()  # the landmarks on the clip's own frame (the engine's are letterboxed)
        entry = {"sha": sha, "points": sequence.points, "draw": draw, "fps": sequence.fps, "n_frames": len(sequence),
                 "hands": extraction.detection_counts()["any_hand"], "realtime": extraction.realtime_factor,
                 "overlay": None, "preview": None, "keeper": keeper}
        self.cache.put(sha, {k: v for k, v in entry.items() if k not in ("keeper", "draw")})
        return entry

    def _preview(self, entry: dict, path: Path, reason: str, timings: dict) -> Path | None:
        """A browser-playable H.264 copy of an upload from its kept frames (stored with the clip's landmarks)."""
        keeper = entry["keeper"]
        start = time.perf_counter()
        try:
            entry["preview"] = render.encode_video(keeper.frames, entry["fps"] / keeper.stride,
                                                   render.render_dir() / "preview")
        except render.RenderError:
            log.warning("could not write a preview of %s", path.name, exc_info=True)
        timings[f"preview ({reason})"] = _ms(start)
        stored = self.cache.get(entry.get("sha", ""))
        if stored is not None:
            stored["preview"] = entry.get("preview")
        return entry.get("preview")

    def _render_overlay(self, entry: dict, result: dict) -> Path | None:
        keeper = entry.get("keeper")
        kept = (result.get("diagnostics") or {}).get("kept")
        try:
            if keeper is not None and len(keeper):
                path = render.render_skeleton_video(entry["draw"], frames=keeper.frames, indices=keeper.indices,
                                                    fps=(entry["fps"] or 30.0) / keeper.stride,
                                                    highlight=tuple(kept) if kept else None)
            else:
                path = render.render_skeleton_video(entry["points"], fps=entry["fps"] or 30.0,
                                                    highlight=tuple(kept) if kept else None)
        except render.RenderError:
            log.exception("could not render the skeleton video")
            return None
        stored = self.cache.get(entry.get("sha", ""))
        if stored is not None:  # the next time this clip comes, its overlay is ready
            stored["overlay"] = path
        return path

    @staticmethod
    def _engine_timings(result: dict) -> dict[str, float]:
        return {f"engine: {k}": round(float(v), 1) for k, v in (result.get("timings_ms") or {}).items()
                if k != "total"}

    # ------------------------------------------------------------------ stored samples and examples

    def held_out(self) -> HeldOut | None:
        """Which stored samples are never references of the engine in force (rebuilt on change)."""
        refs = self.service.engine.references
        with self._lock:
            if self._held_out is None or self._held_out_refs is not refs:
                try:
                    self._held_out = HeldOut.for_samples(self.service.samples(), refs)
                except Exception:
                    log.warning("the sample dataset is not available", exc_info=True)
                    return None
                self._held_out_refs = refs
            return self._held_out

    def examples(self) -> list[Example]:
        """The built-in examples: held-out clips of shipped signs, resting, and clips to reject."""
        if self._examples is None:
            held = self.held_out()
            engine = self.service.engine
            samples = sample_examples(held, self.vocabulary(), list(engine.idle_labels)) if held else []
            self._examples = video_examples(self.videos_dir) + samples
        return self._examples

    def example(self, example_id: str) -> Example | None:
        """An example by id; "sample-of:<sign>" is the first held-out stored clip of that sign."""
        if str(example_id).startswith("sample-of:"):
            label = str(example_id).split(":", 1)[1]
            held = self.held_out()
            picks = held.of(label) if held else []
            if not picks:
                return None
            idle = label in self.service.engine.idle_labels
            return Example(f"sample:{picks[0]}", label, NO_SIGN if idle else label,
                           f"a held-out clip of '{label}'", sample_index=picks[0])
        return next((e for e in self.examples() if e.id == example_id), None)

    def run_example(self, example_id: str, progress: Progress = None) -> Outcome:
        example = self.example(example_id)
        if example is None and str(example_id).startswith("sample-of:"):
            return Outcome(error=f"No held-out stored clip of '{example_id.split(':', 1)[1]}' is available: every "
                                 "stored clip of it is a reference of this model (or it is not a sign it knows).")
        if example is None:
            return Outcome(error=f"There is no example {example_id!r}; pick one of the listed examples.")
        if example.sample_index is not None:
            held = self.held_out()
            return self.recognise_sample(example.sample_index, expected=example.expected, progress=progress,
                                         what=held.describe(example.sample_index) if held else "")
        return self.recognise_clip(example.video, progress, name=example.video.name if example.video else None,
                                   expected=example.expected)

    def example_playable(self, example: Example) -> Path | None:
        """A browser-playable copy of a clip example (made once)."""
        if example.video is None:
            return None
        if example.playable is None:
            try:
                example.playable = render.browser_playable_copy(example.video)
            except Exception:
                log.warning("example clip %s cannot be converted for the browser", example.video, exc_info=True)
                return None
        return example.playable

    def recognise_random_sample(self, label: str | None = None, progress: Progress = None) -> Outcome:
        """A random held-out stored clip (never a reference), replayed and recognised; says which sign it is."""
        try:
            held = self.held_out()
            indices = (held.of(label) if label else held.random_pool()) if held else []
            if not indices:
                what = f" of {label!r}" if label else ""
                return Outcome(error=f"No held-out stored clip{what} is available: every stored sample is a "
                                     "reference of this model, or the sample dataset is missing.")
            index = random.choice(indices)
            truth = self.service.samples().labels[index]
            expected = NO_SIGN if truth in self.service.engine.idle_labels else truth
            return self.recognise_sample(index, expected=expected, progress=progress, what=held.describe(index))
        except Exception as exc:
            log.exception("recognising a random sample failed")
            return Outcome(error=unexpected(exc))

    def recognise_sample(self, index: int, expected: str | None = None, progress: Progress = None,
                         what: str = "") -> Outcome:
        """A stored sequence replayed as a skeleton and recognised (never raises)."""
        try:
            samples = self.service.samples()
            flat = samples.landmarks[index]
            points, _ = flat_to_canonical(flat, samples.layout)
            truth = samples.labels[index]
            _report(progress, 0.3, "Recognising")
            try:
                result = self._predict(points, None)  # the NPZ records no frame rate: as stored
            except DemoInputError as exc:
                return Outcome(error=str(exc))
            timings = self._engine_timings(result)
            name = "resting (no sign)" if truth in self.service.engine.idle_labels else str(truth)
            shown = name if name != truth else f"'{truth}'"
            video = self._sample_videos.get(index)
            if video is None or not video.is_file():
                start = time.perf_counter()
                try:  # 20-frame samples: played at half speed
                    video = render.render_skeleton_video(points, fps=15.0,
                                                         caption=f"held-out clip of {name}")
                    self._sample_videos[index] = video
                except render.RenderError:
                    log.exception("could not render sample %d", index)
                    video = None
                timings["render"] = _ms(start)
            source = f"a stored clip of {shown} from {samples.path.name}" + (f" ({what})" if what else "")
            return Outcome(result={**result, "expected": expected or truth}, skeleton_video=video, timings=timings,
                           source=source, points=points, clip=f"{samples.path.name}#{index}")
        except Exception as exc:
            log.exception("recognising sample %s failed", index)
            return Outcome(error=unexpected(exc))

    # ------------------------------------------------------------------ warming up

    def start_warming(self) -> None:
        """Draw the gallery and prepare every example in a background thread (once)."""
        if self._warm_thread is not None or os.environ.get("DEMO_WARM", "1") in ("0", "false", "False"):
            self.warm_done.set()
            return
        self._warm_thread = threading.Thread(target=self._warm, name="demo-warm", daemon=True)
        self._warm_thread.start()

    def _warm(self) -> None:
        try:
            for card in self.gallery.cards():
                self.gallery.thumbnail(card)
            for example in self.examples():
                if example.sample_index is not None:
                    self.recognise_sample(example.sample_index, expected=example.expected)
            for example in self.examples():
                if example.video is not None:
                    self.example_playable(example)
                    self.recognise_clip(example.video, name=example.video.name, expected=example.expected)
            log.info("demo examples and gallery ready")
        except Exception:
            log.exception("warming the demo's examples failed (they are prepared on first use instead)")
        finally:
            self.warm_done.set()

    # ------------------------------------------------------------------ live webcam

    def new_live_session(self) -> LiveSession:
        return LiveSession(self)

    # ------------------------------------------------------------------ enrolment

    def _write_call(self, method, *args, key: str | None = None, **kwargs):
        """Call a service write with the visitor's key (the service holds the one rule for writes)."""
        if "key" in inspect.signature(method).parameters:
            kwargs["key"] = key or None
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if _user_facing(exc) or isinstance(exc, (ValueError, KeyError)):
                raise DemoInputError(_api_message(exc)) from None
            raise

    def _check_access(self, key: str | None, action: str) -> None:
        """Say why a write cannot happen before any clip is processed (the service decides again)."""
        if self.access == "read_only":
            raise DemoInputError(f"This is a read-only public demo: signs cannot be {action} here. "
                                 "Run SignSeek yourself (make run) to add your own signs.")
        if self.access == "key" and not (key or "").strip():
            raise DemoInputError(f"This deployment is locked: signs can be {action} only with its API key. "
                                 "Enter the key in the 'API key' box.")
        authorize = getattr(self.service, "authorize_write", None)
        if authorize is not None:  # the service's one rule, asked before any clip is processed
            try:
                authorize(key or None)
            except Exception as exc:
                if _user_facing(exc):
                    raise DemoInputError(f"Not allowed: {_api_message(exc)}.") from None
                raise

    def sign_info(self, name: str) -> dict | None:
        return next((s for s in self._signs() if s["name"] == name), None)

    def enrol(self, name: str | None, paths: list[str], progress: Progress = None, *, mode: str = "new",
              key: str | None = None, category: str | None = None) -> EnrolOutcome:
        """Add a sign, or (mode "add") clips to an existing enrolled sign. Raises DemoInputError.

        A name that exists already is never merged silently: the answer is "confirm" (call again
        with mode "add"), and a shipped sign is refused unless the deployment allows it.
        """
        self._check_access(key, "added")
        try:
            name = self.service.check_name((name or "").strip())
        except Exception as exc:  # EnrolmentError naming what is wrong with the name
            raise DemoInputError(f"Sign name: {_api_message(exc)}.") from None
        existing = self.sign_info(name)
        if existing is not None:
            if not existing.get("enrolled") and not getattr(self.settings, "BUNDLE_SIGNS_WRITABLE", False):
                raise DemoInputError(f"'{name}' is one of the shipped signs: the demo never adds clips to a shipped "
                                     f"sign (it would change every visitor's answers). Choose another name, "
                                     f"e.g. '{name}-2'.")
            if mode != "add":
                kind = "shipped" if not existing.get("enrolled") else "added here"
                return EnrolOutcome("confirm", f"'{name}' already exists ({existing['references']} references, "
                                    f"{kind}). Add these clips to '{name}', or choose another name for a new sign.")
        paths = [p for p in paths if p]
        if len(paths) < self.min_enrol_clips:
            raise DemoInputError(f"{len(paths)} clip(s) given: adding a sign needs at least {self.min_enrol_clips} "
                                 "clips of it (upload several files and/or record them).")
        clips = []
        for i, path in enumerate(paths):
            _report(progress, i / (len(paths) + 1), f"Landmarks of clip {i + 1} of {len(paths)}")
            try:
                entry = self._landmarks(Path(path), None, {})
            except DemoInputError as exc:
                raise DemoInputError(f"Clip {i + 1} ({Path(path).name}): {exc}") from None
            clips.append(entry["points"])
        warning = self._closeness_warning(name, clips)
        _report(progress, len(paths) / (len(paths) + 1), "Adding to the reference store")
        response = self._write_call(self.service.enrol, name, clips, category=category,
                                    sources=[Path(p).name for p in paths], key=key)
        verb = "Added" if existing is None else "Added to"
        return EnrolOutcome("added", f"{verb} '{response['name']}' from {response['added']} clips "
                            f"({response['references']} references of it, {response['total_references']} in all). "
                            "It is recognised from now on.", warning)

    def _closeness_warning(self, name: str, clips: list[np.ndarray]) -> str:
        """A warning naming the existing sign the new clips sit closest to, when most of them are close
        enough to it that the engine could take one sign for the other; "" otherwise.

        Closeness is each clip's raw cosine to each sign's nearest reference (the engine's per-sign
        cosine search, its encoder mode: no DTW blend, no density offset, no gates), turned into the
        unknown-score that sign would get as the answer (`signseek.ranker.unknown_score`: the cosine
        plus MARGIN_WEIGHT x its margin over every other sign), the number SIM_THRESHOLD is a
        threshold of. A sign is close when at least half of the clips reach that sign's
        SIM_THRESHOLD (`Ranker.sim_threshold`: letters need more); of those, the one with the highest
        mean cosine is named (not the first in the blended order). Idle labels ('-') and ``name``
        itself (clips added to it) are never named.
        """
        engine = self.service.engine
        threshold_of = engine.ranker.sim_threshold
        idle = set(engine.idle_labels)
        refresh = getattr(self.service, "refresh", None)
        if refresh is not None:  # another worker may have added or deleted a sign
            refresh()
        n_labels = len(set(engine.references.labels))
        cosines: dict[str, list[float]] = {}
        reaches: dict[str, int] = {}  # clips whose unknown-score as that sign reaches its threshold
        scored = 0
        for points in clips:
            try:
                result = engine.recognize(points, top_k=n_labels, mode="encoder")
            except SignSeekError:  # e.g. no usable frame: not counted
                continue
            scored += 1
            clip = {c.label: float(c.raw_similarity) for c in result.candidates
                    if c.label != name and c.raw_similarity is not None}
            top_two = sorted(clip.values(), reverse=True)[:2]  # the best other cosine is one of these
            for label, cos in clip.items():
                if label in idle:
                    continue
                others = top_two[1:] if cos == top_two[0] else top_two[:1]
                score, _ = unknown_score(cos, others[0] if others else None, engine.ranker.settings)
                cosines.setdefault(label, []).append(cos)
                reaches[label] = reaches.get(label, 0) + int(score >= threshold_of(label))
        need = (scored + 1) // 2
        close = {label: sims for label, sims in cosines.items() if scored and reaches[label] >= need}
        if not close:
            return ""
        ranked = sorted(close, key=lambda label: -float(np.mean(close[label])))
        label, sims = ranked[0], sorted(close[ranked[0]], reverse=True)
        threshold = threshold_of(label)
        mean, own = float(np.mean(sims)), engine.ranker.density.get(label)
        if mean >= 0.995:
            how = f"almost exactly the same movement as '{label}'"
        elif own is not None and mean >= own:
            how = f"as close to '{label}' as its own reference clips are to each other"
        else:
            how = f"close enough to '{label}' that one sign could be taken for the other"
        kind = "a sign added here" if (self.sign_info(label) or {}).get("enrolled") else "a shipped sign"
        weight = engine.ranker.settings.MARGIN_WEIGHT
        counts_from = (f"{threshold:.3f}" if not weight else
                       f"a score of {threshold:.3f} (the cosine plus {weight:g} x its lead over the next sign)")
        numbers = f"cosine to it {', '.join(f'{s:.3f}' for s in sims)}; a clip counts as a known sign from {counts_from}"
        if own is not None:
            numbers += f", and clips of '{label}' sit at {own:.3f} to each other"
        also = [f"'{x}' ({float(np.mean(close[x])):.2f})" for x in ranked[1:4]]
        return (f"Careful: these clips sit close to '{label}' ({kind}): {reaches[label]} of "
                f"{scored} are {how} ({numbers})." + (f" Also close: {', '.join(also)}." if also else "")
                + f" Visitors signing '{name}' may get '{label}', or the reverse: check both on the Recognise tab "
                "after adding, or record clearer clips.")

    def delete_question(self, name: str | None) -> str:
        """The confirmation question before deleting ``name`` (DemoInputError if it cannot be deleted)."""
        if not name:
            raise DemoInputError("Choose an added sign to delete.")
        info = self.sign_info(name)
        if info is None:
            raise DemoInputError(f"There is no sign named '{name}'.")
        if not info.get("enrolled"):
            raise DemoInputError(f"'{name}' is a shipped sign; only signs added here can be deleted.")
        return (f"Delete '{name}' and its {info['references']} references? Every visitor's answers change at once; "
                "this cannot be undone.")

    def delete(self, name: str | None, key: str | None = None) -> str:
        self._check_access(key, "deleted")
        if not name:
            raise DemoInputError("Choose an added sign to delete.")
        response = self._write_call(self.service.delete, name, key=key)
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
        idle = set(self.service.engine.idle_labels)
        signs = sorted((s for s in self._signs() if s["name"] not in idle),
                       key=lambda s: (not s.get("enrolled"), s["name"]))  # added here first
        rows = [{"sign": s["name"], "category": s.get("category") or "", "references": s["references"],
                 "source": "added here" if s.get("enrolled") else "shipped"} for s in signs]
        return pd.DataFrame(rows, columns=["sign", "category", "references", "source"])

    def enrolled_names(self) -> list[str]:
        return [s["name"] for s in self._signs() if s.get("enrolled")]

    # ------------------------------------------------------------------ feedback

    @property
    def feedback_notice(self) -> str:
        if self.feedback is None:
            return "Feedback is switched off on this deployment (FEEDBACK_ENABLED=false)."
        return (f"If you agree, we keep {WHAT_IS_KEPT}, in a feedback set separate from the signs the demo "
                f"answers with, for {self.feedback.retention_days:g} days at most. You can delete it right after "
                "sending.")

    def flag(self, last: dict | None, correction: str | None, consent: bool) -> str:
        """Keep a "wrong answer?" flag for the last result. Returns the id; DemoInputError if refused."""
        if self.feedback is None:
            raise DemoInputError("Feedback is switched off on this deployment.")
        if not last or last.get("points") is None or not last.get("result"):
            raise DemoInputError("There is no answer to flag yet: recognise a clip first.")
        try:
            item = self.feedback.add(last["points"], last["result"], correction, consent=bool(consent),
                                     clip=str(last.get("clip") or ""))
        except FeedbackError as exc:
            raise DemoInputError(exc.message) from None
        return item.id

    def unflag(self, item_id: str | None) -> bool:
        return bool(self.feedback is not None and item_id and self.feedback.delete(item_id))

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
            f"- **Bundle**: `{Path(bundle.directory).name}` · created {manifest.get('created', '?')}",
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
                if k in ("SIM_THRESHOLD", "SIM_MARGIN", "MIN_CONFIDENCE", "UNKNOWN_SCALE", "MARGIN_WEIGHT",
                         "DENSITY_WEIGHT", "MOTION_FLOOR", "PROTOTYPE_CHECK", "CONFIDENCE_TEMPERATURE",
                         "DTW_ENABLED", "DTW_TOP_N", "DTW_WEIGHT", "DTW_BACKEND", "DTW_WINDOW", "DTW_SCALE",
                         "DEFAULT_TOP_K", "SEQ_LEN", "CLASSIFIER_MIN_CONFIDENCE", "MAX_VIDEO_SECONDS",
                         "MAX_FRAMES", "MIN_ENROL_CLIPS", "READ_ONLY")]
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
        from signseek.landmarks.extract import make_extractor

        if self._extractor is None:  # the fast path unless LANDMARKS_MODE=holistic
            self._extractor = make_extractor(max_side=480)
        return self._extractor

    def push(self, image: np.ndarray) -> np.ndarray:
        """One webcam frame (RGB) -> the frame with its landmarks drawn; updates the captions."""
        start = time.perf_counter()
        rgb = np.ascontiguousarray(np.asarray(image)[..., :3], dtype=np.uint8)
        with self.lock:
            frame = self._stream().process(rgb)
            # Recognised on the canonical 16:9 frame, as uploads are (a phone's portrait webcam gives the
            # same skeleton as a landscape one); drawn on the webcam's own frame.
            due = self.window.push(letterbox_points(frame.points, rgb.shape[1], rgb.shape[0]))
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
            cands = views.candidates(result)
            top = cands[0] if cands else {}
            guess = (f" (closest: '{top['label']}' {top.get('similarity') or 0:.2f})"
                     if top.get("label") and not views.no_sign_reason(reason) else "")
            self.current = "no sign" + guess
            if views.no_sign_reason(reason):
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


__all__ = ["REJECT", "NO_SIGN", "DemoBackend", "DemoInputError", "EnrolOutcome", "LiveSession", "Outcome"]
