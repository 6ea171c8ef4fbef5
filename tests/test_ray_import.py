"""The Ray engine of the video importer, on a real Ray cluster on 127.0.0.1.

A Ray head node with two worker slots is started with `ray start --head --block` (its own
processes, stopped by PID; see tests/clusters.py). Real clips are imported through the CLI,
`python -m signseek.datasets import ... --engine ray --address 127.0.0.1:PORT`, as a user would:
the first run is interrupted with SIGINT (Ctrl-C) once a clip is written, the second resumes
from the cache, and the result equals the local import of the same clips, bad video included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from clusters import Unavailable, ray_cluster
from servers import free_port
from video_clips import clip_folder, make_clips

from signseek.datasets import SignDataset, import_videos
from signseek.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_address():
    try:
        with ray_cluster(num_cpus=2) as address:
            yield address
    except Unavailable as exc:
        pytest.skip(f"SKIPPED LOUDLY: {exc}")


# The cluster keeps every socket on loopback (see tests/clusters.py); its clients must agree.
LOOPBACK_ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _import_cmd(root: Path, out: Path, cache: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "signseek.datasets", "import", str(root), "--format", "videos",
            "--engine", "ray", "--address", address, "--out", str(out), "--cache-dir", str(cache)]


def test_ray_import_equals_local_import_and_resumes_after_ctrl_c(ray_address, tmp_path):
    clips = make_clips(tmp_path / "clips", n_videos=3)
    root = clip_folder(tmp_path / "videos", clips, broken=True)
    local = import_videos(root, workers=1, cache_dir=tmp_path / "local-cache", progress=False)
    assert len(local) == len(clips) and [Path(p).name for p, _ in local.report.skipped] == ["corrupt.mp4"]

    cache, out = tmp_path / "ray-cache", tmp_path / "ray.npz"
    # Run 1: Ctrl-C once the first clip is on disk (results are written as they finish).
    log = open(tmp_path / "run1.log", "w")
    # SIGINT handled as a terminal's Ctrl-C even when this test runs where SIGINT is ignored (a
    # background job of a non-interactive shell passes SIG_IGN on, and Python then never raises).
    run1 = subprocess.Popen(_import_cmd(root, out, cache, ray_address), cwd=PROJECT_ROOT, env=LOOPBACK_ENV,
                            stdout=log, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    # Finished entries only: a clip being written is "<key>.tmp<pid>.npz" until os.replace (videos.py), and a
    # Ctrl-C then leaves no entry (seen under load: "1 of 3 clips written", then "0 from cache").
    def written():
        return [p for p in cache.glob("*.npz") if ".tmp" not in p.name]

    while not written() and run1.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run1.send_signal(signal.SIGINT)
    try:
        rc1 = run1.wait(timeout=60)
    finally:
        if run1.poll() is None:
            run1.kill()
        log.close()
    output1 = (tmp_path / "run1.log").read_text()
    # Interrupted (130, says how to resume), or finished before the signal landed (0).
    assert rc1 in (0, 130), output1
    if rc1 == 130:
        assert "interrupted" in output1 and "run again to resume" in output1
    done_before = len(written())
    print(f"run 1: exit {rc1}, {done_before} of {len(clips)} clips written")
    assert done_before >= 1

    # Run 2: resumes; only the clips not written by run 1 are extracted.
    run2 = subprocess.run(_import_cmd(root, out, cache, ray_address), cwd=PROJECT_ROOT, env=LOOPBACK_ENV,
                          capture_output=True, text=True, timeout=300)
    assert run2.returncode == 0, run2.stdout + run2.stderr
    assert f"imported {len(clips)} clips ({len(clips) - done_before} extracted, {done_before} from cache)" \
        in run2.stdout, run2.stdout
    assert "corrupt.mp4" in run2.stdout  # the bad video is skipped and said so

    ray_ds = SignDataset.load(out)
    assert ray_ds.ids.tolist() == local.ids.tolist() and ray_ds.labels.tolist() == local.labels.tolist()
    for i in range(len(local)):
        np.testing.assert_array_equal(ray_ds.points(i), local.points(i))
    assert ray_ds.fps.tolist() == local.fps.tolist()


def test_an_unreachable_cluster_is_one_clear_line(tmp_path):
    clips = make_clips(tmp_path / "clips", n_videos=1)
    root = clip_folder(tmp_path / "videos", clips, broken=False)
    done = subprocess.run(_import_cmd(root, tmp_path / "x.npz", tmp_path / "cache", f"127.0.0.1:{free_port()}"),
                          cwd=PROJECT_ROOT, env=LOOPBACK_ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "could not connect to a Ray cluster at 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
