"""The live tab's captions: a sliding window of real landmark frames through the real engine.

MediaPipe is not needed here (tests/test_demo_client.py streams real webcam frames); the window
is filled with a real reference sequence, so the engine's answer is known to be an acceptance.
"""

from __future__ import annotations

import numpy as np
import pytest

from demo.ui.backend import DemoBackend, LiveSession
from signseek.landmarks.schema import LEFT_HAND, RIGHT_HAND


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from fixtures.bundle_factory import build_fixture_bundle

    from demo.api.service import Service
    from signseek.settings import Settings

    tmp = tmp_path_factory.mktemp("live")
    fixture = build_fixture_bundle(tmp / "bundle")
    service = Service.create(Settings(MODELS_DIR=fixture.directory, STORE_PATH=tmp / "store.db", _env_file=None))
    backend = DemoBackend(service)
    backend.fixture = fixture
    return backend


@pytest.fixture(scope="module")
def accepted_clip(backend):
    """A real reference clip the engine accepts, and its label."""
    for points, label in zip(backend.fixture.reference_points, backend.fixture.reference_labels, strict=True):
        result = backend.service.predict(points)
        if result["accepted"] and label != "-":
            assert result["label"] == label
            return points, label
    pytest.fail("the fixture engine accepts none of its own reference clips")


def _fill(session: LiveSession, points: np.ndarray) -> None:
    session.window.clear()
    for frame in points:
        session.window.push(frame)


def test_accepted_signs_are_captioned_once_and_again_after_a_pause(backend, accepted_clip):
    points, label = accepted_clip
    session = backend.new_live_session()
    _fill(session, points)
    session._recognise()
    assert session.captions == [label] and session.current == label
    session._recognise()  # the same sign still in view: no repeated caption
    assert session.captions == [label]

    idle = points.copy()
    idle[:, LEFT_HAND] = np.nan
    idle[:, RIGHT_HAND] = np.nan
    _fill(session, idle)
    session._recognise()
    assert session.current == "no sign"

    _fill(session, points)  # signed again after resting: a new caption
    session._recognise()
    assert session.captions == [label, label]
    html = session.caption_html()
    assert f"{label} {label}" in html and f"hands in {len(points)} of the last {len(points)} frames" in html

    session.reset()
    assert session.captions == [] and "no sign" in session.caption_html()
    session.close()


@pytest.mark.slow
def test_webcam_frames_are_recognised_on_the_same_frame_shape_as_uploads(backend, selfie_clip, selfie_extraction):
    """A portrait (phone) webcam: the live window holds the landmarks on the canonical 16:9 frame, as an
    upload of the same frames gives them (letterbox_points), not the webcam's own stretched coordinates."""
    from signseek.landmarks.video import VideoReader

    session = backend.new_live_session()
    reader = VideoReader(selfie_clip)  # 540x720: a portrait frame, padded to 16:9 in coordinates
    try:
        for rgb in reader:
            overlay = session.push(rgb)
            assert overlay.shape == rgb.shape  # drawn on the webcam's own frame
    finally:
        reader.close()
        session.close()
    live = np.stack(list(session.window.frames))
    upload = selfie_extraction.sequence.points[-len(live):]  # the upload path, letterboxed
    drawn = selfie_extraction.frame_points()[-len(live):]  # the same landmarks on the clip's own frame
    shoulders_arms = slice(11, 17)
    assert np.nanmedian(np.abs(live[:, shoulders_arms, :2] - upload[:, shoulders_arms, :2])) < 0.01
    assert np.nanmedian(np.abs(live[:, shoulders_arms, :2] - drawn[:, shoulders_arms, :2])) > 0.03
