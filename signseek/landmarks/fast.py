"""Fast landmarks: MediaPipe's pose and hand models in a graph of our own, without the face mesh.

    from signseek.landmarks.fast import FastExtractor
    with FastExtractor() as fast:
        frame = fast.process(rgb)                      # FrameLandmarks, as HolisticExtractor gives
        frames = fast.process_frames(rgb_frames, fps)  # a clip, pipelined over the graph's threads

Legacy Holistic (``mp.solutions.holistic``) always runs its face mesh and, offline, only the
"full" pose model. The shipped model reads no face point (``face_points: []``), so this graph is
Holistic's own graph (``holistic_landmark_cpu.pbtxt``) with the face branch left out, the hand
subgraphs written out so the hand model can be chosen (default: MediaPipe's lite hand model), and
the pose model's complexity a side packet (default: the full model, Holistic's). Every calculator
and model is MediaPipe's: the ones the mediapipe wheel carries, plus the "lite" pose model
(Apache-2.0, vendored in ``models/`` with its NOTICE; ``pose_model="lite"``) that the wheel would
otherwise try to download. Nothing is downloaded at run time.

Hands come from the pose exactly as in Holistic (wrist, index and pinky points -> a recrop model ->
the hand landmark model, tracked from the previous frame), so the left/right assignment and the
hand regions behave as Holistic's. The face block of the canonical array stays NaN (``detected``
face False); ask for ``mode="holistic"`` (``make_extractor``) when face points are needed.

``process_frames`` feeds a whole clip into the running graph with a few frames in flight, so the
pose of frame t+1 runs while the hands of frame t do (and left and right hands run side by side):
one process uses both cores without splitting the clip, and tracking runs unbroken.

MediaPipe finds model files through one process-wide resource directory. Ours
(``resource_root()``) is a temporary folder of links to every file of the wheel's
``mediapipe/modules`` plus the vendored lite model, i.e. a superset of the wheel's, so graphs of
either kind open from it. A graph opens its models once, in ``__init__``, under
``RESOURCE_LOCK``; ``HolisticExtractor`` takes the same lock.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .schema import LEFT_HAND, N_POSE, POSE, RIGHT_HAND, empty_points

os.environ.setdefault("GLOG_minloglevel", "2")

MODELS_DIR = Path(__file__).parent / "models"
LITE_POSE_MODEL = MODELS_DIR / "pose_landmark_lite.tflite"
_LITE_POSE_RESOURCE = "mediapipe/modules/pose_landmark/pose_landmark_lite.tflite"

MODEL_COMPLEXITY = {"lite": 0, "full": 1}
# Chosen by measurement (BENCHMARKS.md, "Landmark accuracy"): the full pose model (Holistic's own)
# with the lite hand model keeps closed-set and few-shot top-1 within 0.01 of full Holistic; the
# lite pose model is faster but moved them by -0.011 / -0.013, so it is an option, not the default.
DEFAULT_POSE_MODEL = "full"
DEFAULT_HAND_MODEL = "lite"
DEFAULT_INFLIGHT = 4  # frames fed ahead of the slowest; enough to keep 2 cores busy

RESOURCE_LOCK = threading.RLock()
_ROOT: Path | None = None

_HAND_TEMPLATE = """
node {{
  calculator: "SplitNormalizedLandmarkListCalculator"
  input_stream: "pose_landmarks"
  output_stream: "{side}_hand_from_pose"
  options {{
    [mediapipe.SplitVectorCalculatorOptions.ext] {{
      ranges {{ begin: {wrist} end: {wrist_end} }}
      ranges {{ begin: {pinky} end: {pinky_end} }}
      ranges {{ begin: {index} end: {index_end} }}
      combine_outputs: true
    }}
  }}
}}
node {{
  calculator: "HandVisibilityFromHandLandmarksFromPose"
  input_stream: "HAND_LANDMARKS_FROM_POSE:{side}_hand_from_pose"
  output_stream: "VISIBILITY:{side}_hand_visibility"
}}
node {{
  calculator: "GateCalculator"
  input_stream: "{side}_hand_from_pose"
  input_stream: "ALLOW:{side}_hand_visibility"
  output_stream: "{side}_hand_from_pose_visible"
}}
node {{
  calculator: "HandLandmarksFromPoseToRecropRoi"
  input_stream: "HAND_LANDMARKS_FROM_POSE:{side}_hand_from_pose_visible"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "ROI:{side}_hand_roi_from_pose"
}}
node {{
  calculator: "HandRecropByRoiCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:{side}_hand_roi_from_pose"
  output_stream: "HAND_ROI_FROM_RECROP:{side}_hand_roi_from_recrop"
}}
node {{
  calculator: "HandTracking"
  input_stream: "LANDMARKS:{side}_hand_landmarks"
  input_stream: "HAND_ROI_FROM_RECROP:{side}_hand_roi_from_recrop"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "HAND_TRACKING_ROI:{side}_hand_tracking_roi"
}}
node {{
  calculator: "HandLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:{side}_hand_tracking_roi"
  output_stream: "LANDMARKS:{side}_hand_landmarks"
  input_side_packet: "MODEL_COMPLEXITY:hand_model_complexity"
}}
"""

_GRAPH_HEAD = """
input_stream: "IMAGE:image"
output_stream: "POSE_LANDMARKS:pose_landmarks"
output_stream: "LEFT_HAND_LANDMARKS:left_hand_landmarks"
output_stream: "RIGHT_HAND_LANDMARKS:right_hand_landmarks"
output_stream: "DONE:frame_done"
input_side_packet: "MODEL_COMPLEXITY:model_complexity"
input_side_packet: "HAND_MODEL_COMPLEXITY:hand_model_complexity"
input_side_packet: "SMOOTH_LANDMARKS:smooth_landmarks"
input_side_packet: "USE_PREV_LANDMARKS:use_prev_landmarks"
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE_CPU:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "PoseLandmarkCpu"
  input_stream: "IMAGE:image"
  output_stream: "LANDMARKS:pose_landmarks"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "SMOOTH_LANDMARKS:smooth_landmarks"
  input_side_packet: "USE_PREV_LANDMARKS:use_prev_landmarks"
}
"""

# One boolean a frame once the right hand (the last branch) has settled: paces the feeding.
_GRAPH_TAIL = """
node {
  calculator: "PacketPresenceCalculator"
  input_stream: "PACKET:right_hand_landmarks"
  output_stream: "PRESENCE:frame_done"
}
"""


def graph_config_text() -> str:
    """The graph as CalculatorGraphConfig text (pose -> left and right hands, no face)."""
    # Pose points feeding each hand, in Holistic's order: wrist, pinky, index (left 15/17/19).
    hands = []
    for side, (wrist, pinky, index) in (("left", (15, 17, 19)), ("right", (16, 18, 20))):
        hands.append(_HAND_TEMPLATE.format(
            side=side, wrist=wrist, wrist_end=wrist + 1, pinky=pinky, pinky_end=pinky + 1,
            index=index, index_end=index + 1,
        ))
    return _GRAPH_HEAD + "".join(hands) + _GRAPH_TAIL


def _mediapipe_root() -> Path:
    import mediapipe

    return Path(mediapipe.__file__).resolve().parent.parent


def resource_root() -> Path:
    """The process's MediaPipe resource folder: the wheel's modules + the vendored lite model."""
    global _ROOT
    with RESOURCE_LOCK:
        if _ROOT is not None and _ROOT.is_dir():
            return _ROOT
        if not LITE_POSE_MODEL.is_file():
            raise FileNotFoundError(
                f"{LITE_POSE_MODEL} is missing; reinstall SignSeek (it ships with the package)"
            )
        source = _mediapipe_root()
        root = Path(tempfile.mkdtemp(prefix="signseek-mediapipe-"))
        for dirpath, _dirs, files in os.walk(source / "mediapipe" / "modules"):
            for name in files:
                if name.endswith((".py", ".pyc")):
                    continue
                rel = Path(dirpath, name).relative_to(source)
                _link(source / rel, root / rel)
        _link(LITE_POSE_MODEL, root / _LITE_POSE_RESOURCE)
        atexit.register(shutil.rmtree, root, True)
        _ROOT = root
        return root


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        dst.symlink_to(src)
    except OSError:  # no symlinks here (some Windows setups): a copy works the same
        shutil.copyfile(src, dst)


def use_resource_root() -> None:
    """Point MediaPipe at our resource folder (a superset of the wheel's). Hold RESOURCE_LOCK."""
    from mediapipe.python._framework_bindings import resource_util

    resource_util.set_resource_dir(str(resource_root()))


def restore_after_solution() -> None:
    """After a legacy ``mp.solutions`` object reset the resource folder: point it back at ours,
    if ours was made (its graphs still open from it: it holds every file of the wheel)."""
    if _ROOT is not None:
        use_resource_root()


def _landmark_array(packet) -> np.ndarray:
    from mediapipe.python import packet_getter

    proto = packet_getter.get_proto(packet)
    return np.array([(p.x, p.y, p.z, p.visibility) for p in proto.landmark], dtype=np.float32)


class FastExtractor:
    """Pose + both hands per frame in one MediaPipe graph (no face mesh); see the module doc.

    Same interface as ``HolisticExtractor``: ``process(rgb)``, ``process_frames(frames, fps)``,
    ``reset()``, ``close()``, ``max_side``. Thread-safe (a lock); one graph per instance.
    ``pose_model`` and ``hand_model``: "lite" or "full".
    """

    name = "mediapipe.fast"

    def __init__(
        self,
        max_side: int | None = None,
        pose_model: str = DEFAULT_POSE_MODEL,
        hand_model: str = DEFAULT_HAND_MODEL,
        smooth_landmarks: bool = True,
        inflight: int = DEFAULT_INFLIGHT,
    ) -> None:
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import calculator_graph

        from .extract import DEFAULT_MAX_SIDE

        for what, value in (("pose_model", pose_model), ("hand_model", hand_model)):
            if value not in MODEL_COMPLEXITY:
                raise ValueError(f"{what} must be one of {sorted(MODEL_COMPLEXITY)}, got {value!r}")
        self.max_side = DEFAULT_MAX_SIDE if max_side is None else max_side
        self.pose_model, self.hand_model = pose_model, hand_model
        self.inflight = max(1, int(inflight))
        self._graph = None
        self.frames_processed = 0
        self._lock = threading.Lock()
        self._cv = threading.Condition()
        self._results: dict[int, dict[str, np.ndarray]] = {}
        self._done = 0
        self._error: BaseException | None = None
        self._ts = 0  # microseconds; strictly increasing over the graph's life
        config = text_format.Parse(graph_config_text(), calculator_pb2.CalculatorGraphConfig())
        self._side_packets = {
            "model_complexity": packet_creator.create_int(MODEL_COMPLEXITY[pose_model]),
            "hand_model_complexity": packet_creator.create_int(MODEL_COMPLEXITY[hand_model]),
            "smooth_landmarks": packet_creator.create_bool(smooth_landmarks),
            "use_prev_landmarks": packet_creator.create_bool(True),
        }
        graph = calculator_graph.CalculatorGraph(graph_config=config)
        for stream in ("pose_landmarks", "left_hand_landmarks", "right_hand_landmarks", "frame_done"):
            graph.observe_output_stream(stream, self._observer(stream), False)
        with RESOURCE_LOCK:  # models open on the first frame: load them now, from our folder
            use_resource_root()
            graph.start_run(self._side_packets)
            self._graph = graph
            try:
                self._blank()
            except Exception:
                self.close()
                raise

    # ---- graph plumbing ----------------------------------------------------------------------

    def _observer(self, stream: str):
        def callback(_name, packet) -> None:
            ts = packet.timestamp.value
            if stream == "frame_done":
                with self._cv:
                    self._done += 1
                    self._cv.notify_all()
                return
            try:
                block = _landmark_array(packet)
            except Exception as exc:  # never raise into MediaPipe's thread
                self._error = exc
                return
            with self._cv:
                self._results.setdefault(ts, {})[stream] = block

        return callback

    def _add(self, rgb: np.ndarray, step_us: int) -> int:
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import image_frame

        self._ts += max(1, step_us)
        packet = packet_creator.create_image_frame(image_format=image_frame.ImageFormat.SRGB, data=rgb)
        self._graph.add_packet_to_input_stream("image", packet.at(self._ts))
        return self._ts

    def _wait(self) -> None:
        from .extract import ExtractionError

        try:
            self._graph.wait_until_idle()
        except RuntimeError as exc:
            self._broken()
            raise ExtractionError(f"MediaPipe failed on this clip ({exc}); try again") from exc
        if self._error is not None:
            error, self._error = self._error, None
            raise ExtractionError(f"could not read MediaPipe's landmarks: {error}") from error

    def _broken(self) -> None:
        graph, self._graph = self._graph, None
        if graph is not None:
            try:
                graph.close()
            except RuntimeError:
                pass

    def _blank(self) -> None:
        """A blank frame: loads the models (first call) or drops the tracked person (later)."""
        self._add(np.zeros((64, 64, 3), dtype=np.uint8), 33_333)
        self._wait()
        with self._cv:
            self._results.clear()
            self._done = 0

    def _frame(self, ts: int):
        from .extract import DETECTION_PARTS, FrameLandmarks

        found = self._results.pop(ts, {})
        points = empty_points(1)[0]
        visibility = np.full(N_POSE, np.nan, dtype=np.float32)
        detected = np.zeros(len(DETECTION_PARTS), dtype=bool)
        for column, stream, where in ((0, "pose_landmarks", POSE), (2, "left_hand_landmarks", LEFT_HAND),
                                      (3, "right_hand_landmarks", RIGHT_HAND)):
            block = found.get(stream)
            if block is not None and len(block) == where.stop - where.start:
                points[where] = block[:, :3]
                detected[column] = True
                if column == 0:
                    visibility[:] = block[:, 3]
        return FrameLandmarks(points, visibility, detected)

    def _check_open(self) -> None:
        from .extract import ExtractionError

        if self._graph is None:
            raise ExtractionError("this extractor was closed; create a new one")

    # ---- public ------------------------------------------------------------------------------

    def process(self, rgb: np.ndarray, fps: float = 30.0):
        """Landmarks of one frame, tracked from the previous one (live streams)."""
        from .extract import _check_frame
        from .video import downscale

        rgb = downscale(_check_frame(rgb), self.max_side)
        with self._lock:
            self._check_open()
            ts = self._add(rgb, int(1e6 / fps))
            self._wait()
            self.frames_processed += 1
            with self._cv:
                frame = self._frame(ts)
                self._results.clear()
                self._done = 0
            return frame

    def process_frames(self, frames: Iterable[np.ndarray], fps: float = 30.0) -> list:
        """Landmarks of a clip's frames, tracked from the first (a fresh track), in order.

        Up to ``inflight`` frames are in the graph at once, so its threads overlap the work of
        consecutive frames; the result is the same as feeding the frames one by one.
        """
        from .extract import _check_frame
        from .video import downscale

        step = int(1e6 / fps) if fps and fps > 0 else 33_333
        with self._lock:
            self._check_open()
            self._blank()  # a fresh track, as HolisticExtractor.reset()
            stamps: list[int] = []
            try:
                for rgb in frames:
                    rgb = downscale(_check_frame(rgb), self.max_side)
                    with self._cv:
                        while len(stamps) - self._done >= self.inflight and self._error is None:
                            if not self._cv.wait(timeout=5.0):
                                break  # never hang on a lost signal: the graph drains on its own
                    stamps.append(self._add(rgb, step))
            finally:
                if self._graph is not None:
                    self._wait()
            self.frames_processed += len(stamps)
            with self._cv:
                out = [self._frame(ts) for ts in stamps]
                self._results.clear()
                self._done = 0
            return out

    def reset(self) -> None:
        """Forget the tracked person: the next frame starts a fresh detection."""
        with self._lock:
            if self._graph is not None and self.frames_processed:
                self._blank()

    def close(self) -> None:
        with self._lock:
            graph, self._graph = self._graph, None
            if graph is not None:
                try:
                    graph.close()
                except RuntimeError:
                    pass

    def __enter__(self) -> FastExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to free
            pass

