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
