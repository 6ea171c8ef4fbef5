"""Helpers for the demo tests: run `python app.py` on a free port, write y4m clips for Chromium.

Not a test module (no `test_` prefix): imported by tests/test_demo*.py and tests/test_browser*.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from servers import free_port, serve, stop_process  # noqa: F401  (re-exported for the demo tests)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEOS = PROJECT_ROOT / "sample_dataset" / "videos"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


def sample_video(name: str) -> Path | None:
    """A real clip by file name: sample_dataset/videos/ first, then the shared datasets."""
    for candidate in (SAMPLE_VIDEOS / name, *SHARED_DATASETS.glob(f"*/{name}")):
        if candidate.is_file():
            return candidate
    return None


@contextmanager
def running_app(env: dict[str, str], log_path: Path, timeout_s: float = 300.0) -> Iterator[str]:
    """`python app.py` on 127.0.0.1 and a free port with ``env`` added; yields its base URL."""
    port = free_port()
    # Its own Gradio upload folder: an upload's path is made from its bytes, and a Gradio app deletes the files
    # it received when it stops, so servers sharing /tmp/gradio (other test modules' or other runs') would
    # delete this one's copies of the same clips (benchmarks/bench_demo.py does the same).
    full_env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
                "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "GRADIO_TEMP_DIR": str(log_path.parent / "gradio"),
                **env}
    # The Gradio config answers once the Blocks are mounted.
    with serve([sys.executable, str(PROJECT_ROOT / "app.py")], port, full_env, log_path, timeout_s,
               ready_paths=("/healthz", "/config")) as (url, _proc):
        yield url


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    """RGB frames -> a YUV4MPEG2 (4:2:0) file, what Chromium's fake camera plays in a loop."""
    import cv2

    height, width = frames[0].shape[:2]
    height, width = height - height % 2, width - width % 2
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            # OpenCV's I420 is planar Y, then U and V at quarter size: the y4m 4:2:0 layout.
            yuv = cv2.cvtColor(np.ascontiguousarray(rgb[:height, :width]), cv2.COLOR_RGB2YUV_I420)
            out.write(b"FRAME\n")
            out.write(yuv.tobytes())
    return path


def video_to_y4m(video: Path, path: Path, max_side: int = 480, fps: int = 30) -> Path:
    """A real clip re-encoded as y4m (downscaled: the fake camera's frames are raw)."""
    import cv2

    frames = []
    cap = cv2.VideoCapture(str(video))
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        scale = min(1.0, max_side / max(bgr.shape[:2]))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise RuntimeError(f"could not decode {video}")
    return write_y4m(frames, path, fps)


def demo_env(tmp: Path) -> dict[str, str]:
    """Environment for a test server: the shipped bundle in models/ when it is there, else the
    engine's fixture bundle; a fresh reference store; the sample videos."""
    models = PROJECT_ROOT / "models"
    if (models / "export_manifest.json").is_file():
        models_dir = models
    else:
        from fixtures.bundle_factory import build_fixture_bundle

        models_dir = build_fixture_bundle(tmp / "bundle").directory
    videos = SAMPLE_VIDEOS
    if not (videos / "signer_selfie.mp4").is_file():  # sample_dataset/videos/ not copied yet
        videos = tmp / "videos"
        videos.mkdir(exist_ok=True)
        for name in ("signer_selfie.mp4", "hoy_001.mp4"):
            source = sample_video(name)
            if source is not None:
                (videos / name).write_bytes(source.read_bytes())
    return {"MODELS_DIR": str(models_dir), "STORE_PATH": str(tmp / "enrolled.db"), "VIDEOS_DIR": str(videos)}


def decode(video: Path, max_side: int = 360) -> tuple[list[np.ndarray], float]:
    import av
    import cv2

    frames, fps = [], 30.0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            scale = min(1.0, max_side / max(rgb.shape[:2]))
            if scale < 1:
                rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)))
            frames.append(rgb)
    return frames, fps


def clip_variants(video: Path, out_dir: Path, n: int = 3, length: int = 40) -> list[Path]:
    """``n`` overlapping cuts of a real clip (as a signer repeating one sign), as H.264 mp4 files."""
    from demo.render import encode_video

    frames, fps = decode(video)
    step = max(1, (len(frames) - length) // max(1, n - 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = encode_video(frames[i * step: i * step + length], fps, out_dir)
        paths.append(path.rename(out_dir / f"take{i + 1}{path.suffix}"))
    return paths


def blank_clip(out_dir: Path, seconds: float, fps: float = 10.0, name: str = "blank") -> Path:
    """A grey clip with nobody in it (the 'no person' and 'too long' inputs)."""
    from demo.render import encode_video

    frames = [np.full((96, 96, 3), 90 + (i % 3), dtype=np.uint8) for i in range(round(seconds * fps))]
    path = encode_video(frames, fps, out_dir)
    return path.rename(out_dir / f"{name}{path.suffix}")


def phone_clip(video: Path, out_dir: Path, rotation: int = 90, codec: str = "libx265") -> Path:
    """A phone recording of ``video``: the frames stored sideways (landscape, as the sensor sees
    them) with a rotation tag that turns them upright for display, encoded as HEVC (what phones
    record and Chromium cannot play). Made with Debian's ffmpeg; raises FileNotFoundError without it.

    The tag is written by a stream copy (ffmpeg drops it when it encodes), so it takes two runs.
    """
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        raise FileNotFoundError("ffmpeg is not installed (apt-get install ffmpeg)")
    out_dir.mkdir(parents=True, exist_ok=True)
    sideways, tagged = out_dir / "sideways.mp4", out_dir / f"phone_rot{rotation}_{codec}.mp4"
    turn = {90: "transpose=1", 270: "transpose=2", 180: "hflip,vflip"}[rotation]
    quiet = ["-x265-params", "log-level=error"] if codec == "libx265" else []
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-vf", turn, "-c:v", codec, *quiet,
                    "-pix_fmt", "yuv420p", "-an", str(sideways)], check=True, timeout=120)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(sideways), "-c", "copy",
                    "-metadata:s:v:0", f"rotate={rotation}", str(tagged)], check=True, timeout=60)
    sideways.unlink()
    return tagged
